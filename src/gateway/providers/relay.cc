#include "gateway/providers/relay.h"

#include <algorithm>

#include "base/json.h"
#include "gateway/api/json_fields.h"

namespace iris::gateway::providers {

Result<StreamEvent> RelayedEvent(std::string_view provider, Dialect dialect, std::string type,
                                 boost::json::object& data, std::string_view raw, bool changed) {
  const bool plain =
      !type.empty() && type.size() <= 64 && std::all_of(type.begin(), type.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || c == '.' || c == '_';
      });
  if (!plain) return DataLoss(std::string(provider) + ": a stream event of an unexpected type");
  if (api::StringField(data, "type") != type) {
    data["type"] = type;
    changed = true;
  }
  // (stable_erase: the rest of the event keeps the provider's order)
  if (data.stable_erase("iris") > 0) changed = true;
  StreamEvent relay;
  relay.type = StreamEvent::Type::kAsIs;
  relay.as_is_dialect = dialect;
  relay.text = !changed && raw.find_first_of("\r\n") == std::string_view::npos
                   ? std::string(raw)
                   : SerializeJson(data);
  relay.name = std::move(type);
  return relay;
}

}  // namespace iris::gateway::providers
