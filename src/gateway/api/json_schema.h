// The checks of a JSON Schema that a provider may not enforce itself: iris sends Anthropic a
// schema without the constraints its structured outputs refuse (api below, the Anthropic
// translator), and checks the answer against the caller's own schema, so a caller's limits
// (minimum, maxItems, maxLength, ...) still hold on the answer it gets.
#pragma once

#include <boost/json/value.hpp>
#include <optional>
#include <string>

namespace iris::gateway::api {

// The first way `instance` breaks `schema`, as "path: what" ("$.items[2].qty: 0 is below the
// minimum 1"); nullopt when it keeps it. Checked: type, enum, const, properties, required,
// additionalProperties, items, minItems, maxItems, uniqueItems, minLength, maxLength (in code
// points), minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf, minProperties,
// maxProperties, anyOf, oneOf, allOf, not, and local $refs (#/$defs/..., #/definitions/...).
// Other keywords (pattern, format, ...) are not checked. Bounded for a caller's schema: nesting
// past 64 levels or work past 100000 steps ends the check with no verdict (nullopt), so a bound
// never makes a valid answer look broken.
std::optional<std::string> SchemaViolation(const boost::json::value& instance,
                                           const boost::json::value& schema);

// A schema for Anthropic's structured outputs: every object closed (additionalProperties:
// false), and the constraints it refuses (minimum, maximum, exclusive bounds, multipleOf,
// minLength, maxLength, maxItems, minItems above 1, uniqueItems, min/maxProperties) moved into
// the description as text, so the model still reads them. `moved` is set when anything moved.
boost::json::value AnthropicSchema(const boost::json::value& schema, bool* moved = nullptr);

}  // namespace iris::gateway::api
