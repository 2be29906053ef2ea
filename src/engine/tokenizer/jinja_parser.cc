// Recursive-descent parser for the Jinja subset chat templates use. Operator precedence
// follows jinja2/parser.py: conditional < or < and < not < comparison < + - < ~ < * / // %
// < ** < unary - + < postfix (. [] ()) and filters/tests.
#include "engine/tokenizer/jinja_parser.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <initializer_list>

#include "engine/tokenizer/jinja_builtins.h"
#include "engine/tokenizer/jinja_lexer.h"

namespace iris::tokenizer::jinja {
namespace {

// Deep nesting (a template of 10,000 parentheses) must fail, not overflow the stack.
constexpr int kMaxNesting = 200;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Result<Body> ParseAll() {
    Body body;
    std::string end_tag;
    IRIS_RETURN_IF_ERROR(ParseBody({}, nullptr, &body, &end_tag));
    return body;
  }

 private:
  // Counts nesting for the lifetime of one recursive call.
  class NestingGuard {
   public:
    explicit NestingGuard(int* depth) : depth_(depth) { ++*depth_; }
    ~NestingGuard() { --*depth_; }
    NestingGuard(const NestingGuard&) = delete;
    NestingGuard& operator=(const NestingGuard&) = delete;

   private:
    int* depth_;
  };

  const Token& Peek(size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& Next() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  static bool IsOp(const Token& t, std::string_view op) {
    return t.kind == TokenKind::kOperator && t.text == op;
  }
  static bool IsName(const Token& t, std::string_view name) {
    return t.kind == TokenKind::kName && t.text == name;
  }
  bool AtOp(std::string_view op) const { return IsOp(Peek(), op); }
  bool AtName(std::string_view name) const { return IsName(Peek(), name); }
  bool AcceptOp(std::string_view op) {
    if (!AtOp(op)) return false;
    Next();
    return true;
  }
  bool AcceptName(std::string_view name) {
    if (!AtName(name)) return false;
    Next();
    return true;
  }

  static std::string Describe(const Token& t) {
    switch (t.kind) {
      case TokenKind::kText:
        return "template text";
      case TokenKind::kVarBegin:
        return "'{{'";
      case TokenKind::kVarEnd:
        return "end of '{{ }}'";
      case TokenKind::kBlockBegin:
        return "'{%'";
      case TokenKind::kBlockEnd:
        return "end of tag";
      case TokenKind::kEnd:
        return "end of template";
      case TokenKind::kString:
        return "string literal";
      default:
        return "'" + t.text + "'";
    }
  }

  static Status ErrorAt(const Token& t, std::string_view message) {
    return TemplateError(t.line, t.column, message);
  }
  Status Unexpected(std::string_view expected) const {
    return ErrorAt(Peek(), "expected " + std::string(expected) + ", got " + Describe(Peek()));
  }
  Status ExpectOp(std::string_view op) {
    if (!AcceptOp(op)) return Unexpected("'" + std::string(op) + "'");
    return OkStatus();
  }
  Status ExpectName(std::string_view name) {
    if (!AcceptName(name)) return Unexpected("'" + std::string(name) + "'");
    return OkStatus();
  }
  Result<std::string> ExpectIdentifier() {
    if (Peek().kind != TokenKind::kName) return Unexpected("a name");
    return Next().text;
  }
  Status ExpectBlockEnd() {
    if (Peek().kind != TokenKind::kBlockEnd) return Unexpected("end of tag");
    Next();
    return OkStatus();
  }

  ExprPtr MakeExpr(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // Parses statements until a block tag named in `end_tags`, which it consumes (name
  // included) and reports in *end_tag. `opener` is the tag that needs the end tag.
  Status ParseBody(std::initializer_list<std::string_view> end_tags, const Token* opener,
                   Body* body, std::string* end_tag) {
    NestingGuard guard(&nesting_);
    if (nesting_ > kMaxNesting) return ErrorAt(Peek(), "blocks nested too deeply");
    while (true) {
      const Token& t = Peek();
      switch (t.kind) {
        case TokenKind::kText: {
          auto stmt = std::make_unique<TextStmt>(t.line);
          stmt->text = Next().text;
          body->push_back(std::move(stmt));
          break;
        }
        case TokenKind::kVarBegin: {
          auto stmt = std::make_unique<OutputStmt>(Next().line);
          IRIS_ASSIGN_OR_RETURN(stmt->expr, ParseExpression());
          if (Peek().kind != TokenKind::kVarEnd) return Unexpected("'}}'");
          Next();
          body->push_back(std::move(stmt));
          break;
        }
        case TokenKind::kBlockBegin: {
          const Token& name = Peek(1);
          if (name.kind != TokenKind::kName) {
            Next();
            return Unexpected("a tag name");
          }
          if (std::find(end_tags.begin(), end_tags.end(), name.text) != end_tags.end()) {
            Next();
            *end_tag = Next().text;
            return OkStatus();
          }
          Next();
          IRIS_RETURN_IF_ERROR(ParseStatement(body));
          break;
        }
        case TokenKind::kEnd: {
          if (opener == nullptr) return OkStatus();
          std::string expected;
          for (std::string_view tag : end_tags) {
            if (!expected.empty()) expected += " or ";
            expected += "'" + std::string(tag) + "'";
          }
          return ErrorAt(*opener,
                         "unclosed '" + opener->text + "' block (missing " + expected + ")");
        }
        default:
          return ErrorAt(t, "unexpected " + Describe(t));
      }
    }
  }

  // Parses one `{% name ... %}` statement; the current token is the tag name.
  Status ParseStatement(Body* body) {
    const Token& tag = Peek();
    const std::string& name = tag.text;
    if (name == "if") return ParseIf(body);
    if (name == "for") return ParseFor(body);
    if (name == "set") return ParseSet(body);
    if (name == "macro") return ParseMacro(body);
    if (name == "filter") return ParseFilterBlock(body);
    if (name == "with") return ParseWith(body);
    if (name == "generation") {
      // transformers' AssistantTracker extension: marks assistant text, renders in place.
      const Token& opener = Next();
      auto stmt = std::make_unique<ScopeStmt>(opener.line);
      IRIS_RETURN_IF_ERROR(ExpectBlockEnd());
      std::string end;
      IRIS_RETURN_IF_ERROR(ParseBody({"endgeneration"}, &opener, &stmt->body, &end));
      IRIS_RETURN_IF_ERROR(ExpectBlockEnd());
      body->push_back(std::move(stmt));
      return OkStatus();
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) return ErrorAt(tag, "'" + name + "' outside of a loop");
      StmtKind kind = name == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      body->push_back(std::make_unique<LoopControlStmt>(kind, Next().line));
      return ExpectBlockEnd();
    }
    static constexpr std::string_view kEndTags[] = {
        "elif",      "else",    "endif",         "endfor", "endset",   "endmacro",
        "endfilter", "endwith", "endgeneration", "endraw", "endblock", "endcall"};
    for (std::string_view end : kEndTags) {
      if (name == end) return ErrorAt(tag, "unexpected '" + name + "'");
    }
    static constexpr std::string_view kUnsupported[] = {
        "include", "import",     "from",  "extends",   "block", "call",
        "do",      "autoescape", "trans", "pluralize", "raw"};
    for (std::string_view unsupported : kUnsupported) {
      if (name == unsupported) return ErrorAt(tag, "unsupported tag '" + name + "'");
    }
    return ErrorAt(tag, "unknown tag '" + name + "'");
  }

  Status ParseIf(Body* body) {
    const Token& opener = Next();
    auto stmt = std::make_unique<IfStmt>(opener.line);
    std::string end = "elif";
    while (end == "elif") {
      IRIS_ASSIGN_OR_RETURN(ExprPtr cond, ParseExpression());
      IRIS_RETURN_IF_ERROR(ExpectBlockEnd());
      Body branch;
      IRIS_RETURN_IF_ERROR(ParseBody({"elif", "else", "endif"}, &opener, &branch, &end));
      stmt->branches.emplace_back(std::move(cond), std::move(branch));
    }
    if (end == "else") {
      IRIS_RETURN_IF_ERROR(ExpectBlockEnd());
      IRIS_RETURN_IF_ERROR(ParseBody({"endif"}, &opener, &stmt->else_body, &end));
    }
    IRIS_RETURN_IF_ERROR(ExpectBlockEnd());
    body->push_back(std::move(stmt));
    return OkStatus();
  }

  Status ParseFor(Body* body) {
    const Token& opener = Next();
    auto stmt = std::make_unique<ForStmt>(opener.line);
    bool parenthesized = AcceptOp("(");
    do {
      IRIS_ASSIGN_OR_RETURN(std::string target, ExpectIdentifier());
      stmt->targets.push_back(std::move(target));
    } while (AcceptOp(","));
    if (parenthesized) IRIS_RETURN_IF_ERROR(ExpectOp(")"));
    IRIS_RETURN_IF_ERROR(ExpectName("in"));
    IRIS_ASSIGN_OR_RETURN(stmt->iterable, ParseExpression(/*with_conditional=*/false));
    if (AcceptName("if")) {
      IRIS_ASSIGN_OR_RETURN(stmt->filter, ParseExpression());
    }
    if (AtName("recursive")) return ErrorAt(Peek(), "unsupported: recursive for loops");
    IRIS_RETURN_IF_ERROR(ExpectBlockEnd());
    std::string end;
    ++loop_depth_;
    Status status = ParseBody({"else", "endfor"}, &opener, &stmt->body, &end);
    --loop_depth_;
    IRIS_RETURN_IF_ERROR(status);
    if (end == "else") {
      IRIS_RETURN_IF_ERROR(ExpectBlockEnd());
      IRIS_RETURN_IF_ERROR(ParseBody({"endfor"}, &opener, &stmt->else_body, &end));
    }
    IRIS_RETURN_IF_ERROR(ExpectBlockEnd());
    body->push_back(std::move(stmt));
    return OkStatus();
  }

  Status ParseSet(Body* body) {
    const Token& opener = Next();
    auto stmt = std::make_unique<SetStmt>(opener.line);
    IRIS_ASSIGN_OR_RETURN(std::string first, ExpectIdentifier());
    stmt->targets.push_back(std::move(first));
    if (AcceptOp(".")) {
      IRIS_ASSIGN_OR_RETURN(stmt->attribute, ExpectIdentifier());
    } else {
      while (AcceptOp(",")) {
        IRIS_ASSIGN_OR_RETURN(std::string target, ExpectIdentifier());
        stmt->targets.push_back(std::move(target));
      }
    }
    if (AcceptOp("=")) {
      IRIS_ASSIGN_OR_RETURN(stmt->value, ParseTupleOrExpression());
      IRIS_RETURN_IF_ERROR(ExpectBlockEnd());
    } else {
      if (stmt->targets.size() != 1 || !stmt->attribute.empty()) {
        return Unexpected("'='");
      }
      if (AtOp("|")) return ErrorAt(Peek(), "unsupported: filtered block set");
      IRIS_RETURN_IF_ERROR(ExpectBlockEnd());
      std::string end;
      IRIS_RETURN_IF_ERROR(ParseBody({"endset"}, &opener, &stmt->body, &end));
      IRIS_RETURN_IF_ERROR(ExpectBlockEnd());
    }
    body->push_back(std::move(stmt));
    return OkStatus();
  }

  Status ParseMacro(Body* body) {
    const Token& opener = Next();
    auto stmt = std::make_unique<MacroStmt>(opener.line);
    IRIS_ASSIGN_OR_RETURN(stmt->name, ExpectIdentifier());
    IRIS_RETURN_IF_ERROR(ExpectOp("("));
    while (!AcceptOp(")")) {
      if (!stmt->params.empty()) {
        IRIS_RETURN_IF_ERROR(ExpectOp(","));
        if (AcceptOp(")")) break;
      }
      IRIS_ASSIGN_OR_RETURN(std::string param, ExpectIdentifier());
      ExprPtr default_value;
      if (AcceptOp("=")) {
        IRIS_ASSIGN_OR_RETURN(default_value, ParseExpression());
      }
      stmt->params.push_back(std::move(param));
      stmt->defaults.push_back(std::move(default_value));
    }
    IRIS_RETURN_IF_ERROR(ExpectBlockEnd());
    std::string end;
    int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;  // a loop around the macro's definition is not around its body
    Status status = ParseBody({"endmacro"}, &opener, &stmt->body, &end);
    loop_depth_ = saved_loop_depth;
    IRIS_RETURN_IF_ERROR(status);
    IRIS_RETURN_IF_ERROR(ExpectBlockEnd());
    body->push_back(std::move(stmt));
    return OkStatus();
  }

  Status ParseFilterBlock(Body* body) {
    const Token& opener = Next();
    auto stmt = std::make_unique<FilterBlockStmt>(opener.line);
    do {
      IRIS_ASSIGN_OR_RETURN(ExprPtr filter, ParseFilter(nullptr));
      stmt->filters.push_back(std::move(filter));
    } while (AcceptOp("|"));
    IRIS_RETURN_IF_ERROR(ExpectBlockEnd());
    std::string end;
    IRIS_RETURN_IF_ERROR(ParseBody({"endfilter"}, &opener, &stmt->body, &end));
    IRIS_RETURN_IF_ERROR(ExpectBlockEnd());
    body->push_back(std::move(stmt));
    return OkStatus();
  }

  Status ParseWith(Body* body) {
    const Token& opener = Next();
    auto stmt = std::make_unique<WithStmt>(opener.line);
    while (Peek().kind != TokenKind::kBlockEnd) {
      if (!stmt->assignments.empty()) IRIS_RETURN_IF_ERROR(ExpectOp(","));
      IRIS_ASSIGN_OR_RETURN(std::string name, ExpectIdentifier());
      IRIS_RETURN_IF_ERROR(ExpectOp("="));
      IRIS_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression());
      stmt->assignments.emplace_back(std::move(name), std::move(value));
    }
    Next();
    std::string end;
    IRIS_RETURN_IF_ERROR(ParseBody({"endwith"}, &opener, &stmt->body, &end));
    IRIS_RETURN_IF_ERROR(ExpectBlockEnd());
    body->push_back(std::move(stmt));
    return OkStatus();
  }

  // `a, b` (as in `set x = a, b`) is a tuple; a single expression is itself.
  Result<ExprPtr> ParseTupleOrExpression() {
    int line = Peek().line;
    IRIS_ASSIGN_OR_RETURN(ExprPtr first, ParseExpression());
    if (!AtOp(",")) return first;
    ExprPtr list = MakeExpr(ExprKind::kTuple, line);
    list->args.push_back(std::move(first));
    while (AcceptOp(",")) {
      if (Peek().kind == TokenKind::kBlockEnd) break;
      IRIS_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression());
      list->args.push_back(std::move(item));
    }
    return list;
  }

  Result<ExprPtr> ParseExpression(bool with_conditional = true) {
    NestingGuard guard(&nesting_);
    if (nesting_ > kMaxNesting) return ErrorAt(Peek(), "expression nested too deeply");
    if (!with_conditional) return ParseOr();
    IRIS_ASSIGN_OR_RETURN(ExprPtr expr, ParseOr());
    while (AtName("if")) {
      int line = Next().line;
      ExprPtr cond_expr = MakeExpr(ExprKind::kConditional, line);
      IRIS_ASSIGN_OR_RETURN(ExprPtr cond, ParseOr());
      ExprPtr else_expr;
      if (AcceptName("else")) {
        IRIS_ASSIGN_OR_RETURN(else_expr, ParseExpression());
      }
      cond_expr->args.push_back(std::move(expr));
      cond_expr->args.push_back(std::move(cond));
      cond_expr->args.push_back(std::move(else_expr));
      expr = std::move(cond_expr);
    }
    return expr;
  }

  Result<ExprPtr> ParseOr() {
    IRIS_ASSIGN_OR_RETURN(ExprPtr left, ParseAnd());
    while (AtName("or")) {
      ExprPtr node = MakeExpr(ExprKind::kOr, Next().line);
      IRIS_ASSIGN_OR_RETURN(ExprPtr right, ParseAnd());
      node->args.push_back(std::move(left));
      node->args.push_back(std::move(right));
      left = std::move(node);
    }
    return left;
  }

  Result<ExprPtr> ParseAnd() {
    IRIS_ASSIGN_OR_RETURN(ExprPtr left, ParseNot());
    while (AtName("and")) {
      ExprPtr node = MakeExpr(ExprKind::kAnd, Next().line);
      IRIS_ASSIGN_OR_RETURN(ExprPtr right, ParseNot());
      node->args.push_back(std::move(left));
      node->args.push_back(std::move(right));
      left = std::move(node);
    }
    return left;
  }

  Result<ExprPtr> ParseNot() {
    if (!AtName("not")) return ParseCompare();
    NestingGuard guard(&nesting_);
    if (nesting_ > kMaxNesting) return ErrorAt(Peek(), "expression nested too deeply");
    ExprPtr node = MakeExpr(ExprKind::kNot, Next().line);
    IRIS_ASSIGN_OR_RETURN(ExprPtr operand, ParseNot());
    node->args.push_back(std::move(operand));
    return node;
  }

  Result<ExprPtr> ParseCompare() {
    int line = Peek().line;
    IRIS_ASSIGN_OR_RETURN(ExprPtr left, ParseMath1());
    ExprPtr node;
    while (true) {
      std::string op;
      const Token& t = Peek();
      if (t.kind == TokenKind::kOperator && (t.text == "==" || t.text == "!=" || t.text == "<" ||
                                             t.text == ">" || t.text == "<=" || t.text == ">=")) {
        op = t.text;
        Next();
      } else if (IsName(t, "in")) {
        op = "in";
        Next();
      } else if (IsName(t, "not") && IsName(Peek(1), "in")) {
        op = "not in";
        Next();
        Next();
      } else {
        break;
      }
      if (node == nullptr) {
        node = MakeExpr(ExprKind::kCompare, line);
        node->args.push_back(std::move(left));
      }
      IRIS_ASSIGN_OR_RETURN(ExprPtr right, ParseMath1());
      node->ops.push_back(std::move(op));
      node->args.push_back(std::move(right));
    }
    if (node == nullptr) return left;
    return node;
  }

  // One precedence level of left-associative binary operators.
  template <typename Operand>
  Result<ExprPtr> ParseBinary(std::initializer_list<std::string_view> ops, Operand operand) {
    IRIS_ASSIGN_OR_RETURN(ExprPtr left, operand());
    while (true) {
      const Token& t = Peek();
      if (t.kind != TokenKind::kOperator ||
          std::find(ops.begin(), ops.end(), t.text) == ops.end()) {
        return left;
      }
      ExprPtr node = MakeExpr(ExprKind::kBinary, t.line);
      node->name = Next().text;
      IRIS_ASSIGN_OR_RETURN(ExprPtr right, operand());
      node->args.push_back(std::move(left));
      node->args.push_back(std::move(right));
      left = std::move(node);
    }
  }

  Result<ExprPtr> ParseMath1() {
    return ParseBinary({"+", "-"}, [this] { return ParseConcat(); });
  }
  Result<ExprPtr> ParseConcat() {
    return ParseBinary({"~"}, [this] { return ParseMath2(); });
  }
  Result<ExprPtr> ParseMath2() {
    return ParseBinary({"*", "/", "//", "%"}, [this] { return ParsePow(); });
  }
  Result<ExprPtr> ParsePow() {
    return ParseBinary({"**"}, [this] { return ParseUnary(true); });
  }

  Result<ExprPtr> ParseUnary(bool with_filter) {
    NestingGuard guard(&nesting_);
    if (nesting_ > kMaxNesting) return ErrorAt(Peek(), "expression nested too deeply");
    ExprPtr node;
    if (AtOp("-") || AtOp("+")) {
      node = MakeExpr(ExprKind::kUnary, Peek().line);
      node->name = Next().text;
      IRIS_ASSIGN_OR_RETURN(ExprPtr operand, ParseUnary(false));
      node->args.push_back(std::move(operand));
    } else {
      IRIS_ASSIGN_OR_RETURN(node, ParsePrimary());
    }
    IRIS_ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
    if (with_filter) {
      IRIS_ASSIGN_OR_RETURN(node, ParseFilterExpr(std::move(node)));
    }
    return node;
  }

  Result<ExprPtr> ParsePrimary() {
    const Token& t = Peek();
    switch (t.kind) {
      case TokenKind::kName: {
        static constexpr std::string_view kKeywords[] = {"and", "or", "not", "in",
                                                         "is",  "if", "else"};
        for (std::string_view keyword : kKeywords) {
          if (t.text == keyword) return ErrorAt(t, "unexpected '" + t.text + "'");
        }
        ExprPtr node = MakeExpr(ExprKind::kLiteral, t.line);
        if (t.text == "true" || t.text == "True") {
          node->literal = Value::Bool(true);
        } else if (t.text == "false" || t.text == "False") {
          node->literal = Value::Bool(false);
        } else if (t.text == "none" || t.text == "None") {
          node->literal = Value::None();
        } else {
          node->kind = ExprKind::kName;
          node->name = t.text;
        }
        Next();
        return node;
      }
      case TokenKind::kString: {
        ExprPtr node = MakeExpr(ExprKind::kLiteral, t.line);
        std::string text;
        while (Peek().kind == TokenKind::kString) text += Next().text;  // "a" "b" == "ab"
        node->literal = Value::String(std::move(text));
        return node;
      }
      case TokenKind::kInt: {
        ExprPtr node = MakeExpr(ExprKind::kLiteral, t.line);
        int64_t value = 0;
        auto res = std::from_chars(t.text.data(), t.text.data() + t.text.size(), value);
        if (res.ec != std::errc()) return ErrorAt(t, "integer literal out of range");
        node->literal = Value::Int(value);
        Next();
        return node;
      }
      case TokenKind::kFloat: {
        ExprPtr node = MakeExpr(ExprKind::kLiteral, t.line);
        node->literal = Value::Float(std::strtod(t.text.c_str(), nullptr));
        Next();
        return node;
      }
      case TokenKind::kOperator:
        if (t.text == "(") return ParseParenthesized();
        if (t.text == "[") return ParseListLiteral();
        if (t.text == "{") return ParseDictLiteral();
        break;
      default:
        break;
    }
    return ErrorAt(t, "unexpected " + Describe(t));
  }

  // `(expr)` is expr; `()`, `(a,)` and `(a, b)` are tuples.
  Result<ExprPtr> ParseParenthesized() {
    int line = Next().line;
    if (AcceptOp(")")) return MakeExpr(ExprKind::kTuple, line);
    IRIS_ASSIGN_OR_RETURN(ExprPtr first, ParseExpression());
    if (AcceptOp(")")) return first;
    ExprPtr tuple = MakeExpr(ExprKind::kTuple, line);
    tuple->args.push_back(std::move(first));
    while (!AcceptOp(")")) {
      IRIS_RETURN_IF_ERROR(ExpectOp(","));
      if (AcceptOp(")")) break;
      IRIS_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression());
      tuple->args.push_back(std::move(item));
    }
    return tuple;
  }

  Result<ExprPtr> ParseListLiteral() {
    ExprPtr list = MakeExpr(ExprKind::kList, Next().line);
    while (!AcceptOp("]")) {
      if (!list->args.empty()) {
        IRIS_RETURN_IF_ERROR(ExpectOp(","));
        if (AcceptOp("]")) break;
      }
      IRIS_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression());
      list->args.push_back(std::move(item));
    }
    return list;
  }

  Result<ExprPtr> ParseDictLiteral() {
    ExprPtr dict = MakeExpr(ExprKind::kDict, Next().line);
    while (!AcceptOp("}")) {
      if (!dict->args.empty()) {
        IRIS_RETURN_IF_ERROR(ExpectOp(","));
        if (AcceptOp("}")) break;
      }
      IRIS_ASSIGN_OR_RETURN(ExprPtr key, ParseExpression());
      IRIS_RETURN_IF_ERROR(ExpectOp(":"));
      IRIS_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression());
      dict->args.push_back(std::move(key));
      dict->args.push_back(std::move(value));
    }
    return dict;
  }

  Result<ExprPtr> ParsePostfix(ExprPtr node) {
    while (true) {
      if (AtOp(".")) {
        int line = Next().line;
        const Token& t = Peek();
        if (t.kind == TokenKind::kName) {
          ExprPtr attr = MakeExpr(ExprKind::kGetAttr, line);
          attr->name = Next().text;
          attr->args.push_back(std::move(node));
          node = std::move(attr);
        } else if (t.kind == TokenKind::kInt) {
          ExprPtr item = MakeExpr(ExprKind::kGetItem, line);
          IRIS_ASSIGN_OR_RETURN(ExprPtr index, ParsePrimary());
          item->args.push_back(std::move(node));
          item->args.push_back(std::move(index));
          node = std::move(item);
        } else {
          return Unexpected("an attribute name");
        }
      } else if (AtOp("[")) {
        IRIS_ASSIGN_OR_RETURN(node, ParseSubscript(std::move(node)));
      } else if (AtOp("(")) {
        IRIS_ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
      } else {
        return node;
      }
    }
  }

  Result<ExprPtr> ParseSubscript(ExprPtr object) {
    int line = Next().line;
    ExprPtr start, stop, step;
    if (!AtOp(":")) {
      IRIS_ASSIGN_OR_RETURN(start, ParseExpression());
    }
    if (!AcceptOp(":")) {
      IRIS_RETURN_IF_ERROR(ExpectOp("]"));
      ExprPtr item = MakeExpr(ExprKind::kGetItem, line);
      item->args.push_back(std::move(object));
      item->args.push_back(std::move(start));
      return item;
    }
    if (!AtOp("]") && !AtOp(":")) {
      IRIS_ASSIGN_OR_RETURN(stop, ParseExpression());
    }
    if (AcceptOp(":") && !AtOp("]")) {
      IRIS_ASSIGN_OR_RETURN(step, ParseExpression());
    }
    IRIS_RETURN_IF_ERROR(ExpectOp("]"));
    ExprPtr slice = MakeExpr(ExprKind::kSlice, line);
    slice->args.push_back(std::move(object));
    slice->args.push_back(std::move(start));
    slice->args.push_back(std::move(stop));
    slice->args.push_back(std::move(step));
    return slice;
  }

  // Parses `(a, b, k=v)` into node->args (after what is already there) and node->kwargs.
  Status ParseArguments(Expr* node) {
    IRIS_RETURN_IF_ERROR(ExpectOp("("));
    bool first = true;
    while (!AcceptOp(")")) {
      if (!first) {
        IRIS_RETURN_IF_ERROR(ExpectOp(","));
        if (AcceptOp(")")) break;
      }
      first = false;
      if (AtOp("*") || AtOp("**")) return ErrorAt(Peek(), "unsupported: *args in a call");
      if (Peek().kind == TokenKind::kName && IsOp(Peek(1), "=")) {
        std::string name = Next().text;
        Next();
        IRIS_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression());
        node->kwargs.emplace_back(std::move(name), std::move(value));
      } else {
        if (!node->kwargs.empty()) {
          return ErrorAt(Peek(), "positional argument follows keyword argument");
        }
        IRIS_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression());
        node->args.push_back(std::move(value));
      }
    }
    return OkStatus();
  }

  Result<ExprPtr> ParseCall(ExprPtr callee) {
    ExprPtr call = MakeExpr(ExprKind::kCall, Peek().line);
    call->args.push_back(std::move(callee));
    IRIS_RETURN_IF_ERROR(ParseArguments(call.get()));
    return call;
  }

  Result<ExprPtr> ParseFilterExpr(ExprPtr node) {
    while (true) {
      if (AcceptOp("|")) {
        IRIS_ASSIGN_OR_RETURN(node, ParseFilter(std::move(node)));
      } else if (AtName("is")) {
        Next();
        IRIS_ASSIGN_OR_RETURN(node, ParseTest(std::move(node)));
      } else if (AtOp("(")) {
        IRIS_ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
      } else {
        return node;
      }
    }
  }

  // `name` or `name(args)` after a `|`; `input` may be null (a filter block).
  Result<ExprPtr> ParseFilter(ExprPtr input) {
    const Token& t = Peek();
    if (t.kind != TokenKind::kName) return Unexpected("a filter name");
    if (!IsKnownFilter(t.text)) return ErrorAt(t, "unknown filter '" + t.text + "'");
    ExprPtr filter = MakeExpr(ExprKind::kFilter, t.line);
    filter->name = Next().text;
    filter->args.push_back(std::move(input));
    if (AtOp("(")) IRIS_RETURN_IF_ERROR(ParseArguments(filter.get()));
    return filter;
  }

  // After `is`: `[not] name`, `name(args)` or `name arg` (as in `is divisibleby 3`).
  Result<ExprPtr> ParseTest(ExprPtr input) {
    bool negated = AcceptName("not");
    const Token& t = Peek();
    if (t.kind != TokenKind::kName) return Unexpected("a test name");
    if (!IsKnownTest(t.text)) return ErrorAt(t, "unknown test '" + t.text + "'");
    ExprPtr test = MakeExpr(ExprKind::kTest, t.line);
    test->name = Next().text;
    test->negated = negated;
    test->args.push_back(std::move(input));
    const Token& next = Peek();
    if (IsOp(next, "(")) {
      IRIS_RETURN_IF_ERROR(ParseArguments(test.get()));
    } else if ((next.kind == TokenKind::kName || next.kind == TokenKind::kString ||
                next.kind == TokenKind::kInt || next.kind == TokenKind::kFloat || IsOp(next, "[") ||
                IsOp(next, "{")) &&
               !IsName(next, "else") && !IsName(next, "or") && !IsName(next, "and")) {
      if (IsName(next, "is")) return ErrorAt(next, "tests cannot be chained with 'is'");
      IRIS_ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());
      IRIS_ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
      test->args.push_back(std::move(arg));
    }
    return test;
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int loop_depth_ = 0;
  int nesting_ = 0;
};

}  // namespace

Result<Body> ParseTemplate(std::string_view source) {
  IRIS_ASSIGN_OR_RETURN(std::vector<Token> tokens, Lex(source));
  return Parser(std::move(tokens)).ParseAll();
}

}  // namespace iris::tokenizer::jinja
