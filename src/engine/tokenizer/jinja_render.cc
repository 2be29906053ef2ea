// Tree-walking evaluator for chat templates. Scoping follows Jinja: a for loop, macro call
// or with block opens a scope, so `set` inside a loop is invisible after it (templates use
// namespace() to carry state out); `if` opens none. Undefined names are lenient: they print
// as "", are false, iterate as empty, and their attributes are undefined too.
#include "engine/tokenizer/jinja_render.h"

#include <algorithm>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/tokenizer/jinja_builtins.h"
#include "engine/tokenizer/jinja_lexer.h"

namespace iris::tokenizer::jinja {
namespace {

constexpr int kMaxCallDepth = 64;
constexpr int64_t kMaxLoopIterations = 10'000'000;

// A builtin's error (which has no position) with the template line added.
Status AtLine(const Status& status, int line) {
  return Status(status.code(),
                "chat template line " + std::to_string(line) + ": " + status.message());
}

class Renderer {
 public:
  explicit Renderer(const boost::json::object& context) {
    for (const auto& entry : context) globals_[std::string(entry.key())] = FromJson(entry.value());
    scopes_ = {&globals_, &top_};
  }

  // Namespaces are the only values a template can change, so every reference cycle
  // (`set ns.self = ns`, two namespaces holding each other) runs through one that was assigned
  // to. Those still alive when the render ends are emptied, or the cycles would leak.
  ~Renderer() {
    for (auto& [raw, weak] : assigned_namespaces_) {
      if (std::shared_ptr<ValueDict> ns = weak.lock()) *ns = ValueDict();
    }
  }
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  Result<std::string> Run(const Body& body) {
    std::string out;
    IRIS_ASSIGN_OR_RETURN(Flow flow, Exec(body, &out));
    (void)flow;  // the parser rejects break/continue outside loops
    return out;
  }

 private:
  using Frame = std::unordered_map<std::string, Value>;
  enum class Flow { kNormal, kBreak, kContinue };

  // Pushes a scope for the lifetime of the guard.
  class ScopeGuard {
   public:
    ScopeGuard(Renderer* r, Frame* frame) : r_(r) { r_->scopes_.push_back(frame); }
    ~ScopeGuard() { r_->scopes_.pop_back(); }
    ScopeGuard(const ScopeGuard&) = delete;
    ScopeGuard& operator=(const ScopeGuard&) = delete;

   private:
    Renderer* r_;
  };

  Value Lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto found = (*it)->find(name);
      if (found != (*it)->end()) return found->second;
    }
    if (IsGlobalFunction(name)) return Value::Function(Callable{nullptr, name});
    return Value::Undefined(name);
  }

  void Assign(const std::string& name, Value value) { (*scopes_.back())[name] = std::move(value); }

  // Binds loop or set targets: one name takes the value, several unpack a sequence.
  Status Bind(const std::vector<std::string>& targets, const Value& value, int line) {
    if (targets.size() == 1) {
      Assign(targets[0], value);
      return OkStatus();
    }
    Result<ValueList> items = Iterate(value);
    if (!items.ok()) return AtLine(items.status(), line);
    if (items->size() != targets.size()) {
      return TemplateError(line, 0,
                           "cannot unpack " + std::to_string(items->size()) + " values into " +
                               std::to_string(targets.size()) + " names");
    }
    for (size_t i = 0; i < targets.size(); ++i) Assign(targets[i], (*items)[i]);
    return OkStatus();
  }

  Result<Flow> Exec(const Body& body, std::string* out) {
    for (const auto& stmt : body) {
      IRIS_ASSIGN_OR_RETURN(Flow flow, ExecStmt(*stmt, out));
      if (flow != Flow::kNormal) return flow;
      if (out->size() > kMaxStringBytes) {
        return AtLine(ResourceExhausted("rendered text exceeds " + std::to_string(kMaxStringBytes) +
                                        " bytes"),
                      stmt->line);
      }
    }
    return Flow::kNormal;
  }

  Result<Flow> ExecStmt(const Stmt& stmt, std::string* out) {
    switch (stmt.kind) {
      case StmtKind::kText:
        *out += static_cast<const TextStmt&>(stmt).text;
        return Flow::kNormal;
      case StmtKind::kOutput: {
        IRIS_ASSIGN_OR_RETURN(Value v, Eval(*static_cast<const OutputStmt&>(stmt).expr));
        *out += ToStr(v);
        return Flow::kNormal;
      }
      case StmtKind::kIf: {
        const auto& s = static_cast<const IfStmt&>(stmt);
        for (const auto& [cond, body] : s.branches) {
          IRIS_ASSIGN_OR_RETURN(Value c, Eval(*cond));
          if (Truthy(c)) return Exec(body, out);
        }
        return Exec(s.else_body, out);
      }
      case StmtKind::kFor:
        return ExecFor(static_cast<const ForStmt&>(stmt), out);
      case StmtKind::kSet:
        IRIS_RETURN_IF_ERROR(ExecSet(static_cast<const SetStmt&>(stmt)));
        return Flow::kNormal;
      case StmtKind::kMacro: {
        const auto& s = static_cast<const MacroStmt&>(stmt);
        Assign(s.name, Value::Function(Callable{&s, ""}));
        return Flow::kNormal;
      }
      case StmtKind::kBreak:
        return Flow::kBreak;
      case StmtKind::kContinue:
        return Flow::kContinue;
      case StmtKind::kFilterBlock: {
        const auto& s = static_cast<const FilterBlockStmt&>(stmt);
        std::string text;
        IRIS_ASSIGN_OR_RETURN(Flow flow, Exec(s.body, &text));
        Value v = Value::String(std::move(text));
        for (const auto& filter : s.filters) {
          IRIS_ASSIGN_OR_RETURN(v, ApplyFilterExpr(*filter, v));
        }
        *out += ToStr(v);
        return flow;
      }
      case StmtKind::kWith: {
        const auto& s = static_cast<const WithStmt&>(stmt);
        Frame frame;
        for (const auto& [name, expr] : s.assignments) {
          IRIS_ASSIGN_OR_RETURN(frame[name], Eval(*expr));
        }
        ScopeGuard guard(this, &frame);
        return Exec(s.body, out);
      }
      case StmtKind::kScope:
        return Exec(static_cast<const ScopeStmt&>(stmt).body, out);
    }
    return Flow::kNormal;
  }

  // Each iteration gets a fresh scope, as in Jinja: a `set` in the body lasts until the
  // next item, and the names outside the loop are untouched.
  Result<Flow> ExecFor(const ForStmt& s, std::string* out) {
    IRIS_ASSIGN_OR_RETURN(Value iterable, Eval(*s.iterable));
    Result<ValueList> all_items = Iterate(iterable);
    if (!all_items.ok()) return AtLine(all_items.status(), s.line);
    ValueList items;
    if (s.filter != nullptr) {
      for (const Value& item : *all_items) {
        Frame frame;
        ScopeGuard guard(this, &frame);
        IRIS_RETURN_IF_ERROR(Bind(s.targets, item, s.line));
        IRIS_ASSIGN_OR_RETURN(Value keep, Eval(*s.filter));
        if (Truthy(keep)) items.push_back(item);
      }
    } else {
      items = std::move(*all_items);
    }
    const auto n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      if (++loop_iterations_ > kMaxLoopIterations) {
        return AtLine(ResourceExhausted("more than " + std::to_string(kMaxLoopIterations) +
                                        " loop iterations"),
                      s.line);
      }
      Frame frame;
      ScopeGuard guard(this, &frame);
      const Value& item = items[static_cast<size_t>(i)];
      IRIS_RETURN_IF_ERROR(Bind(s.targets, item, s.line));
      ValueDict loop;
      loop.Set("index", Value::Int(i + 1));
      loop.Set("index0", Value::Int(i));
      loop.Set("revindex", Value::Int(n - i));
      loop.Set("revindex0", Value::Int(n - i - 1));
      loop.Set("first", Value::Bool(i == 0));
      loop.Set("last", Value::Bool(i == n - 1));
      loop.Set("length", Value::Int(n));
      loop.Set("depth", Value::Int(1));
      loop.Set("depth0", Value::Int(0));
      loop.Set("previtem",
               i > 0 ? items[static_cast<size_t>(i - 1)] : Value::Undefined("previtem"));
      loop.Set("nextitem",
               i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::Undefined("nextitem"));
      frame["loop"] = Value::Dict(std::move(loop));
      IRIS_ASSIGN_OR_RETURN(Flow flow, Exec(s.body, out));
      if (flow == Flow::kBreak) break;
    }
    if (n == 0) {
      Frame frame;
      ScopeGuard guard(this, &frame);
      IRIS_ASSIGN_OR_RETURN(Flow flow, Exec(s.else_body, out));
      (void)flow;
    }
    return Flow::kNormal;
  }

  Status ExecSet(const SetStmt& s) {
    Value value;
    if (s.value != nullptr) {
      IRIS_ASSIGN_OR_RETURN(value, Eval(*s.value));
    } else {
      std::string text;
      IRIS_ASSIGN_OR_RETURN(Flow flow, Exec(s.body, &text));
      (void)flow;
      value = Value::String(std::move(text));
    }
    if (!s.attribute.empty()) {
      Value target = Lookup(s.targets[0]);
      if (!target.is_namespace()) {
        return TemplateError(s.line, 0,
                             "cannot set attribute '" + s.attribute + "' on '" + s.targets[0] +
                                 "', which is not a namespace()");
      }
      target.mutable_namespace().Set(s.attribute, std::move(value));
      NoteAssigned(target);
      return OkStatus();
    }
    return Bind(s.targets, value, s.line);
  }

  Result<Args> EvalArgs(const Expr& e, size_t first) {
    Args args;
    for (size_t i = first; i < e.args.size(); ++i) {
      IRIS_ASSIGN_OR_RETURN(Value v, Eval(*e.args[i]));
      args.positional.push_back(std::move(v));
    }
    for (const auto& [name, expr] : e.kwargs) {
      IRIS_ASSIGN_OR_RETURN(Value v, Eval(*expr));
      args.keyword.emplace_back(name, std::move(v));
    }
    return args;
  }

  Result<Value> ApplyFilterExpr(const Expr& e, const Value& input) {
    IRIS_ASSIGN_OR_RETURN(Args args, EvalArgs(e, 1));
    return Bounded(ApplyFilter(e.name, input, args), e.line);
  }

  // A value a filter, an operator or a call made, or its error, at `line`: a string beyond
  // kMaxStringBytes or a list beyond kMaxListItems is refused (repeated `| tojson` doubles a
  // string, `x + x` in a loop a list).
  Result<Value> Bounded(Result<Value> r, int line) {
    if (!r.ok()) return AtLine(r.status(), line);
    if (r->is_string()) {
      if (Status s = StringWithinBound(r->str().size()); !s.ok()) return AtLine(s, line);
    }
    if (r->is_list()) {
      if (Status s = ListWithinBound(r->list().size()); !s.ok()) return AtLine(s, line);
    }
    return r;
  }

  Result<Value> Eval(const Expr& e) {
    switch (e.kind) {
      case ExprKind::kLiteral:
        return e.literal;
      case ExprKind::kName:
        return Lookup(e.name);
      case ExprKind::kList:
      case ExprKind::kTuple: {
        ValueList items;
        for (const auto& item : e.args) {
          IRIS_ASSIGN_OR_RETURN(Value v, Eval(*item));
          items.push_back(std::move(v));
        }
        if (e.kind == ExprKind::kTuple) return Value::Tuple(std::move(items));
        return Value::List(std::move(items));
      }
      case ExprKind::kDict: {
        ValueDict dict;
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          IRIS_ASSIGN_OR_RETURN(Value key, Eval(*e.args[i]));
          IRIS_ASSIGN_OR_RETURN(Value value, Eval(*e.args[i + 1]));
          if (!key.is_string()) {
            return TemplateError(e.line, 0,
                                 "dict keys must be strings, not " + std::string(TypeName(key)));
          }
          dict.Set(key.str(), std::move(value));
        }
        return Value::Dict(std::move(dict));
      }
      case ExprKind::kGetAttr: {
        IRIS_ASSIGN_OR_RETURN(Value object, Eval(*e.args[0]));
        return GetAttribute(object, e.name);
      }
      case ExprKind::kGetItem: {
        IRIS_ASSIGN_OR_RETURN(Value object, Eval(*e.args[0]));
        IRIS_ASSIGN_OR_RETURN(Value key, Eval(*e.args[1]));
        return GetItem(object, key);
      }
      case ExprKind::kSlice: {
        IRIS_ASSIGN_OR_RETURN(Value object, Eval(*e.args[0]));
        Value bounds[3];
        for (size_t i = 0; i < 3; ++i) {
          if (e.args[i + 1] != nullptr) {
            IRIS_ASSIGN_OR_RETURN(bounds[i], Eval(*e.args[i + 1]));
          } else {
            bounds[i] = Value::None();
          }
        }
        Result<Value> r = Slice(object, bounds[0], bounds[1], bounds[2]);
        if (!r.ok()) return AtLine(r.status(), e.line);
        return r;
      }
      case ExprKind::kCall: {
        IRIS_ASSIGN_OR_RETURN(Value v, EvalCall(e));  // its errors name their line already
        return Bounded(std::move(v), e.line);
      }
      case ExprKind::kFilter: {
        IRIS_ASSIGN_OR_RETURN(Value input, Eval(*e.args[0]));
        return ApplyFilterExpr(e, input);
      }
      case ExprKind::kTest: {
        IRIS_ASSIGN_OR_RETURN(Value input, Eval(*e.args[0]));
        IRIS_ASSIGN_OR_RETURN(Args args, EvalArgs(e, 1));
        Result<bool> r = ApplyTest(e.name, input, args);
        if (!r.ok()) return AtLine(r.status(), e.line);
        return Value::Bool(*r != e.negated);
      }
      case ExprKind::kUnary: {
        IRIS_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
        if (v.is_float()) return Value::Float(e.name == "-" ? -v.float_value() : v.float_value());
        if (v.is_int() || v.is_bool()) {
          int64_t i = v.AsInt();
          if (e.name == "+") return Value::Int(i);
          if (i == INT64_MIN) return TemplateError(e.line, 0, "integer overflow");
          return Value::Int(-i);
        }
        return TemplateError(
            e.line, 0,
            "bad operand type for unary " + e.name + ": '" + std::string(TypeName(v)) + "'");
      }
      case ExprKind::kNot: {
        IRIS_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
        return Value::Bool(!Truthy(v));
      }
      case ExprKind::kBinary: {
        IRIS_ASSIGN_OR_RETURN(Value a, Eval(*e.args[0]));
        IRIS_ASSIGN_OR_RETURN(Value b, Eval(*e.args[1]));
        return Bounded(BinaryOp(e.name, a, b), e.line);
      }
      case ExprKind::kAnd: {
        IRIS_ASSIGN_OR_RETURN(Value a, Eval(*e.args[0]));
        if (!Truthy(a)) return a;
        return Eval(*e.args[1]);
      }
      case ExprKind::kOr: {
        IRIS_ASSIGN_OR_RETURN(Value a, Eval(*e.args[0]));
        if (Truthy(a)) return a;
        return Eval(*e.args[1]);
      }
      case ExprKind::kCompare: {
        IRIS_ASSIGN_OR_RETURN(Value left, Eval(*e.args[0]));
        for (size_t i = 0; i < e.ops.size(); ++i) {
          IRIS_ASSIGN_OR_RETURN(Value right, Eval(*e.args[i + 1]));
          Result<bool> r = Compare(e.ops[i], left, right);
          if (!r.ok()) return AtLine(r.status(), e.line);
          if (!*r) return Value::Bool(false);
          left = std::move(right);
        }
        return Value::Bool(true);
      }
      case ExprKind::kConditional: {
        IRIS_ASSIGN_OR_RETURN(Value cond, Eval(*e.args[1]));
        if (Truthy(cond)) return Eval(*e.args[0]);
        if (e.args[2] != nullptr) return Eval(*e.args[2]);
        return Value::Undefined("");
      }
    }
    return TemplateError(e.line, 0, "internal error: unknown expression");
  }

  Result<Value> EvalCall(const Expr& e) {
    const Expr& callee = *e.args[0];
    if (callee.kind == ExprKind::kGetAttr) {
      IRIS_ASSIGN_OR_RETURN(Value object, Eval(*callee.args[0]));
      IRIS_ASSIGN_OR_RETURN(Args args, EvalArgs(e, 1));
      if (callee.name == "cycle" && callee.args[0]->kind == ExprKind::kName &&
          callee.args[0]->name == "loop" && object.is_dict()) {
        const Value* index0 = object.dict().Find("index0");
        if (index0 == nullptr || args.positional.empty()) {
          return TemplateError(e.line, 0, "loop.cycle() needs at least one argument");
        }
        return args.positional[static_cast<size_t>(index0->int_value()) % args.positional.size()];
      }
      if (object.is_undefined()) return Value::Undefined(callee.name);
      Value attribute = GetAttribute(object, callee.name);
      if (attribute.is_callable()) return CallCallable(attribute.callable(), args, e.line);
      Result<Value> r = CallMethod(object, callee.name, args);
      if (!r.ok()) return AtLine(r.status(), e.line);
      return r;
    }
    IRIS_ASSIGN_OR_RETURN(Value fn, Eval(callee));
    IRIS_ASSIGN_OR_RETURN(Args args, EvalArgs(e, 1));
    if (fn.is_callable()) return CallCallable(fn.callable(), args, e.line);
    if (fn.is_undefined() && callee.kind == ExprKind::kName) {
      return TemplateError(e.line, 0, "unknown function '" + callee.name + "'");
    }
    return TemplateError(e.line, 0, "'" + std::string(TypeName(fn)) + "' object is not callable");
  }

  Result<Value> CallCallable(const Callable& callable, const Args& args, int line) {
    if (callable.macro != nullptr) return CallMacro(*callable.macro, args, line);
    if (callable.builtin == "raise_exception") {
      const Value* message = args.Get(0, "message");
      return TemplateError(line, 0, message != nullptr ? ToStr(*message) : "raise_exception");
    }
    Result<Value> r = CallGlobal(callable.builtin, args);
    if (!r.ok()) return AtLine(r.status(), line);
    return r;
  }

  // A macro sees the globals, the template's top-level names and its own parameters.
  Result<Value> CallMacro(const MacroStmt& macro, const Args& args, int line) {
    if (call_depth_ >= kMaxCallDepth) {
      return TemplateError(
          line, 0, "macro calls nested more than " + std::to_string(kMaxCallDepth) + " deep");
    }
    if (args.positional.size() > macro.params.size()) {
      return TemplateError(line, 0,
                           "macro '" + macro.name + "' takes " +
                               std::to_string(macro.params.size()) + " arguments, got " +
                               std::to_string(args.positional.size()));
    }
    for (const auto& [name, value] : args.keyword) {
      if (std::find(macro.params.begin(), macro.params.end(), name) == macro.params.end()) {
        return TemplateError(line, 0, "macro '" + macro.name + "' has no parameter '" + name + "'");
      }
    }
    Frame frame;
    std::vector<Frame*> saved = std::move(scopes_);
    scopes_ = {&globals_, &top_, &frame};
    ++call_depth_;
    Result<std::string> result = [&]() -> Result<std::string> {
      for (size_t i = 0; i < macro.params.size(); ++i) {
        const Value* given = args.Get(i, macro.params[i]);
        if (given != nullptr) {
          frame[macro.params[i]] = *given;
        } else if (macro.defaults[i] != nullptr) {
          IRIS_ASSIGN_OR_RETURN(frame[macro.params[i]], Eval(*macro.defaults[i]));
        } else {
          frame[macro.params[i]] = Value::Undefined(macro.params[i]);
        }
      }
      std::string out;
      IRIS_ASSIGN_OR_RETURN(Flow flow, Exec(macro.body, &out));
      (void)flow;
      return out;
    }();
    --call_depth_;
    scopes_ = std::move(saved);
    if (!result.ok()) return result.status();
    return Value::String(std::move(*result));
  }

  void NoteAssigned(const Value& ns) {
    const std::shared_ptr<ValueDict>& shared = ns.shared_dict();
    if (!assigned_namespaces_.try_emplace(shared.get(), shared).second) return;
    // Forget the namespaces that are gone (a loop may make millions), at amortised O(1).
    if (assigned_namespaces_.size() > 2 * assigned_live_ + 64) {
      std::erase_if(assigned_namespaces_, [](const auto& e) { return e.second.expired(); });
      assigned_live_ = assigned_namespaces_.size();
    }
  }

  Frame globals_;
  Frame top_;
  std::vector<Frame*> scopes_;  // innermost last
  int call_depth_ = 0;
  int64_t loop_iterations_ = 0;
  std::unordered_map<const ValueDict*, std::weak_ptr<ValueDict>> assigned_namespaces_;
  size_t assigned_live_ = 0;  // entries after the last sweep
};

}  // namespace

Result<std::string> RenderTemplate(const Body& body, const boost::json::object& context) {
  return Renderer(context).Run(body);
}

}  // namespace iris::tokenizer::jinja
