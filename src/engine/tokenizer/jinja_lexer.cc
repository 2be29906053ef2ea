// Jinja's lexer, reduced to what chat templates use. Whitespace control mirrors
// jinja2/lexer.py with trim_blocks=True and lstrip_blocks=True: `{%-`/`{{-`/`{#-` strip all
// whitespace before the tag, `-%}`/`-}}`/`-#}` all whitespace after it, a block or comment
// tag eats one newline after it (unless `+%}`), and spaces/tabs between a line start and a
// block or comment tag are dropped (unless `{%+`).
#include "engine/tokenizer/jinja_lexer.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "engine/tokenizer/jinja_value.h"

namespace iris::tokenizer::jinja {

Status TemplateError(int line, int column, std::string_view message) {
  std::string text = "chat template line " + std::to_string(line);
  if (column > 0) text += ", column " + std::to_string(column);
  text += ": ";
  text += message;
  return InvalidArgument(std::move(text));
}

namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool IsDecimalDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || IsDecimalDigit(c); }

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// Operators, longest first so "//" wins over "/".
constexpr std::string_view kOperators[] = {
    "//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
    ">",  "=",  "(",  ")",  "[",  "]",  "{", "}", ",", ".", ":", "|", ";",
};

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  Result<std::vector<Token>> Run() {
    size_t pos = 0;
    bool strip_leading = false;  // the previous tag ended with '-'
    while (true) {
      size_t tag = FindTag(pos);
      size_t text_begin = pos;
      size_t text_end = tag == std::string::npos ? src_.size() : tag;
      if (strip_leading) {
        while (text_begin < text_end && IsSpace(src_[text_begin])) ++text_begin;
      }
      char tag_kind = 0;
      char modifier = 0;
      if (tag != std::string::npos) {
        tag_kind = src_[tag + 1];
        if (tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+')) {
          modifier = src_[tag + 2];
        }
        if (modifier == '-') {
          while (text_end > text_begin && IsSpace(src_[text_end - 1])) --text_end;
        } else if (modifier != '+' && tag_kind != '{') {
          LStripBlock(text_begin, &text_end);
        }
      }
      if (text_end > text_begin) {
        Emit(TokenKind::kText, src_.substr(text_begin, text_end - text_begin), text_begin);
      }
      if (tag == std::string::npos) break;

      size_t p = tag + 2 + (modifier != 0 ? 1 : 0);
      char closing_modifier = 0;
      if (tag_kind == '#') {
        size_t end = src_.find("#}", p);
        if (end == std::string::npos) return ErrorAt(tag, "unclosed comment");
        if (end > p && (src_[end - 1] == '-' || src_[end - 1] == '+')) {
          closing_modifier = src_[end - 1];
        }
        pos = end + 2;
      } else if (tag_kind == '%' && IsRawTag(p)) {
        IRIS_RETURN_IF_ERROR(LexRaw(tag, p, &pos, &closing_modifier));
      } else {
        IRIS_RETURN_IF_ERROR(LexTag(tag, tag_kind, p, &pos, &closing_modifier));
      }
      strip_leading = closing_modifier == '-';
      // trim_blocks: a block or comment tag eats the newline right after it.
      if (tag_kind != '{' && closing_modifier == 0 && pos < src_.size() && src_[pos] == '\n') {
        ++pos;
      }
    }
    Emit(TokenKind::kEnd, "", src_.size());
    return std::move(tokens_);
  }

 private:
  size_t FindTag(size_t from) const {
    while (true) {
      size_t p = src_.find('{', from);
      if (p == std::string::npos || p + 1 >= src_.size()) return std::string::npos;
      char c = src_[p + 1];
      if (c == '{' || c == '%' || c == '#') return p;
      from = p + 1;
    }
  }

  // lstrip_blocks: drops the spaces and tabs between a line start and the tag.
  void LStripBlock(size_t text_begin, size_t* text_end) const {
    size_t line_begin = *text_end;
    while (line_begin > text_begin && src_[line_begin - 1] != '\n') --line_begin;
    bool at_line_start = line_begin > text_begin || text_begin == 0 || src_[text_begin - 1] == '\n';
    if (!at_line_start) return;
    for (size_t i = line_begin; i < *text_end; ++i) {
      if (src_[i] != ' ' && src_[i] != '\t') return;
    }
    *text_end = line_begin;
  }

  // `{% raw %}`, `{%- raw -%}`, ... starting after the `{%` and its modifier.
  bool IsRawTag(size_t p) const {
    while (p < src_.size() && IsSpace(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    if (p < src_.size() && IsNameChar(src_[p])) return false;
    while (p < src_.size() && IsSpace(src_[p])) ++p;
    if (p < src_.size() && src_[p] == '-') ++p;
    return src_.compare(p, 2, "%}") == 0;
  }

  Status LexRaw(size_t tag, size_t p, size_t* pos, char* closing_modifier) {
    p = src_.find("%}", p);
    bool strip_after_open = src_[p - 1] == '-';
    p += 2;
    if (strip_after_open) {
      while (p < src_.size() && IsSpace(src_[p])) ++p;
    }
    size_t search = p;
    while (true) {
      size_t end_tag = src_.find("{%", search);
      if (end_tag == std::string::npos) return ErrorAt(tag, "missing 'endraw' for 'raw'");
      size_t q = end_tag + 2;
      char modifier = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) modifier = src_[q++];
      while (q < src_.size() && IsSpace(src_[q])) ++q;
      if (src_.compare(q, 6, "endraw") != 0) {
        search = end_tag + 2;
        continue;
      }
      q += 6;
      while (q < src_.size() && IsSpace(src_[q])) ++q;
      *closing_modifier = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) *closing_modifier = src_[q++];
      if (src_.compare(q, 2, "%}") != 0) return ErrorAt(end_tag, "malformed 'endraw' tag");
      size_t text_end = end_tag;
      if (modifier == '-') {
        while (text_end > p && IsSpace(src_[text_end - 1])) --text_end;
      }
      if (text_end > p) Emit(TokenKind::kText, src_.substr(p, text_end - p), p);
      *pos = q + 2;
      return OkStatus();
    }
  }

  // Tokenizes a `{{ ... }}` or `{% ... %}` tag whose expression starts at p. Brackets
  // nest, so `}}` inside a dict literal does not close a `{{`.
  Status LexTag(size_t tag, char tag_kind, size_t p, size_t* pos, char* closing_modifier) {
    bool block = tag_kind == '%';
    Emit(block ? TokenKind::kBlockBegin : TokenKind::kVarBegin, "", tag);
    std::string_view close = block ? "%}" : "}}";
    int depth = 0;
    while (true) {
      while (p < src_.size() && IsSpace(src_[p])) ++p;
      if (p >= src_.size()) {
        return ErrorAt(tag, block ? "unclosed '{%' tag" : "unclosed '{{' tag");
      }
      if (depth == 0) {
        char m = src_[p];
        if ((m == '-' || (block && m == '+')) && src_.compare(p + 1, 2, close) == 0) {
          *closing_modifier = m;
          Emit(block ? TokenKind::kBlockEnd : TokenKind::kVarEnd, "", p);
          *pos = p + 3;
          return OkStatus();
        }
        if (src_.compare(p, 2, close) == 0) {
          *closing_modifier = 0;
          Emit(block ? TokenKind::kBlockEnd : TokenKind::kVarEnd, "", p);
          *pos = p + 2;
          return OkStatus();
        }
      }
      char c = src_[p];
      if (IsNameStart(c)) {
        size_t start = p;
        while (p < src_.size() && IsNameChar(src_[p])) ++p;
        Emit(TokenKind::kName, src_.substr(start, p - start), start);
      } else if (IsDecimalDigit(c)) {
        IRIS_RETURN_IF_ERROR(LexNumber(&p));
      } else if (c == '\'' || c == '"') {
        IRIS_RETURN_IF_ERROR(LexString(&p));
      } else {
        std::string_view op;
        for (std::string_view candidate : kOperators) {
          if (src_.compare(p, candidate.size(), candidate) == 0) {
            op = candidate;
            break;
          }
        }
        if (op.empty()) {
          // The whole UTF-8 sequence, so the message stays valid UTF-8.
          std::string ch = CodePoints(std::string_view(src_).substr(p, 4)).front();
          return ErrorAt(p, "unexpected character '" + ch + "'");
        }
        if (op == "(" || op == "[" || op == "{") ++depth;
        if ((op == ")" || op == "]" || op == "}") && depth > 0) --depth;
        Emit(TokenKind::kOperator, std::string(op), p);
        p += op.size();
      }
    }
  }

  Status LexNumber(size_t* pos) {
    size_t p = *pos;
    size_t start = p;
    std::string digits;
    auto take_digits = [&]() {
      while (p < src_.size() &&
             (IsDecimalDigit(src_[p]) ||
              (src_[p] == '_' && p + 1 < src_.size() && IsDecimalDigit(src_[p + 1])))) {
        if (src_[p] != '_') digits.push_back(src_[p]);
        ++p;
      }
    };
    take_digits();
    bool is_float = false;
    // After a '.', `x.0.1` is two integer subscripts, not a float (as in Jinja).
    bool after_dot = !tokens_.empty() && tokens_.back().kind == TokenKind::kOperator &&
                     tokens_.back().text == ".";
    if (!after_dot && p + 1 < src_.size() && src_[p] == '.' && IsDecimalDigit(src_[p + 1])) {
      is_float = true;
      digits.push_back('.');
      ++p;
      take_digits();
    }
    if (!after_dot && p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
      size_t q = p + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && IsDecimalDigit(src_[q])) {
        is_float = true;
        digits.push_back('e');
        digits.append(src_, p + 1, q - p - 1);
        p = q;
        take_digits();
      }
    }
    Emit(is_float ? TokenKind::kFloat : TokenKind::kInt, std::move(digits), start);
    *pos = p;
    return OkStatus();
  }

  // A string literal with Python's escapes (\n, \t, \\, \', \", \xhh, \uhhhh, \Uhhhhhhhh,
  // octal); an unknown escape keeps its backslash, as in Python.
  Status LexString(size_t* pos) {
    size_t start = *pos;
    char quote = src_[start];
    std::string value;
    size_t p = start + 1;
    while (true) {
      if (p >= src_.size()) return ErrorAt(start, "unterminated string literal");
      char c = src_[p];
      if (c == quote) break;
      if (c != '\\') {
        value.push_back(c);
        ++p;
        continue;
      }
      if (p + 1 >= src_.size()) return ErrorAt(start, "unterminated string literal");
      char e = src_[p + 1];
      p += 2;
      switch (e) {
        case 'n':
          value.push_back('\n');
          break;
        case 't':
          value.push_back('\t');
          break;
        case 'r':
          value.push_back('\r');
          break;
        case 'b':
          value.push_back('\b');
          break;
        case 'f':
          value.push_back('\f');
          break;
        case 'v':
          value.push_back('\v');
          break;
        case 'a':
          value.push_back('\a');
          break;
        case '\\':
        case '\'':
        case '"':
          value.push_back(e);
          break;
        case '\n':
          break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          size_t width = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (size_t k = 0; k < width; ++k) {
            char h = p + k < src_.size() ? src_[p + k] : '\0';
            int digit = IsDecimalDigit(h)        ? h - '0'
                        : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                        : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                                 : -1;
            if (digit < 0) {
              return ErrorAt(p - 2, "truncated \\" + std::string(1, e) + " escape");
            }
            cp = cp * 16 + static_cast<uint32_t>(digit);
          }
          if (cp > 0x10ffff) return ErrorAt(p - 2, "escape out of the Unicode range");
          AppendUtf8(cp, &value);
          p += width;
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int k = 0; k < 2 && p < src_.size() && src_[p] >= '0' && src_[p] <= '7'; ++k) {
              cp = cp * 8 + static_cast<uint32_t>(src_[p++] - '0');
            }
            AppendUtf8(cp, &value);
          } else {
            value.push_back('\\');
            value.push_back(e);
          }
      }
    }
    Emit(TokenKind::kString, std::move(value), start);
    *pos = p + 1;
    return OkStatus();
  }

  void Emit(TokenKind kind, std::string text, size_t offset) {
    auto [line, column] = LineColumn(offset);
    tokens_.push_back(Token{kind, std::move(text), line, column});
  }

  std::pair<int, int> LineColumn(size_t offset) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    size_t line_index = static_cast<size_t>(it - line_starts_.begin()) - 1;
    return {static_cast<int>(line_index + 1),
            static_cast<int>(offset - line_starts_[line_index] + 1)};
  }

  Status ErrorAt(size_t offset, std::string_view message) const {
    auto [line, column] = LineColumn(offset);
    return TemplateError(line, column, message);
  }

  std::string src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
};

// Jinja normalizes "\r\n" and "\r" to "\n" and, with keep_trailing_newline=False, drops
// one newline at the very end of the template.
std::string NormalizeNewlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

Result<std::vector<Token>> Lex(std::string_view source) {
  return Lexer(NormalizeNewlines(source)).Run();
}

}  // namespace iris::tokenizer::jinja
