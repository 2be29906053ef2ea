// The syntax tree of a parsed chat template: statements (text, output, if, for, set, macro,
// ...) over expressions. Immutable after parsing, so renders may share it across threads.
// Internal to the interpreter.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tokenizer/jinja_value.h"

namespace iris::tokenizer::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  kLiteral,      // literal
  kName,         // name
  kList,         // [args...]
  kTuple,        // (args...)
  kDict,         // {args[0]: args[1], args[2]: args[3], ...}
  kGetAttr,      // args[0].name
  kGetItem,      // args[0][args[1]]
  kSlice,        // args[0][args[1]:args[2]:args[3]], each bound may be null
  kCall,         // args[0](args[1...], kwargs)
  kFilter,       // args[0] | name(args[1...], kwargs); args[0] is null in a filter block
  kTest,         // args[0] is [not] name(args[1...]); negated for `is not`
  kUnary,        // name ("-" or "+") args[0]
  kNot,          // not args[0]
  kBinary,       // args[0] name args[1] for + - * / // % ** ~
  kAnd,          // args[0] and args[1]
  kOr,           // args[0] or args[1]
  kCompare,      // args[0] ops[0] args[1] ops[1] args[2] ... (chained like Python)
  kConditional,  // args[0] if args[1] else args[2] (args[2] may be null)
};

struct Expr {
  ExprKind kind;
  int line = 0;
  std::string name;
  Value literal;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;  // kCompare: "==", "!=", "<", ">", "<=", ">=", "in", "not in"
  bool negated = false;
};

enum class StmtKind {
  kText,
  kOutput,
  kIf,
  kFor,
  kSet,
  kMacro,
  kBreak,
  kContinue,
  kFilterBlock,
  kWith,
  kScope,  // a body rendered in place, e.g. {% generation %}
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
  Stmt(StmtKind k, int l) : kind(k), line(l) {}
  virtual ~Stmt() = default;
  StmtKind kind;
  int line;
};

struct TextStmt : Stmt {
  explicit TextStmt(int l) : Stmt(StmtKind::kText, l) {}
  std::string text;
};

struct OutputStmt : Stmt {
  explicit OutputStmt(int l) : Stmt(StmtKind::kOutput, l) {}
  ExprPtr expr;
};

struct IfStmt : Stmt {
  explicit IfStmt(int l) : Stmt(StmtKind::kIf, l) {}
  std::vector<std::pair<ExprPtr, Body>> branches;  // if, then each elif
  Body else_body;
};

struct ForStmt : Stmt {
  explicit ForStmt(int l) : Stmt(StmtKind::kFor, l) {}
  std::vector<std::string> targets;  // one name, or several to unpack each item
  ExprPtr iterable;
  ExprPtr filter;  // `for x in y if filter`, may be null
  Body body;
  Body else_body;  // rendered when no item passes
};

struct SetStmt : Stmt {
  explicit SetStmt(int l) : Stmt(StmtKind::kSet, l) {}
  std::vector<std::string> targets;  // names (several unpack a sequence)
  std::string attribute;             // `set ns.attribute = ...` when not empty (one target)
  ExprPtr value;                     // null for a block set
  Body body;                         // `{% set x %}body{% endset %}`
};

struct MacroStmt : Stmt {
  explicit MacroStmt(int l) : Stmt(StmtKind::kMacro, l) {}
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // one per param, null when it has none
  Body body;
};

struct LoopControlStmt : Stmt {
  LoopControlStmt(StmtKind k, int l) : Stmt(k, l) {}
};

struct FilterBlockStmt : Stmt {
  explicit FilterBlockStmt(int l) : Stmt(StmtKind::kFilterBlock, l) {}
  std::vector<ExprPtr> filters;  // kFilter with a null input, applied in order
  Body body;
};

struct WithStmt : Stmt {
  explicit WithStmt(int l) : Stmt(StmtKind::kWith, l) {}
  std::vector<std::pair<std::string, ExprPtr>> assignments;
  Body body;
};

struct ScopeStmt : Stmt {
  explicit ScopeStmt(int l) : Stmt(StmtKind::kScope, l) {}
  Body body;
};

}  // namespace iris::tokenizer::jinja
