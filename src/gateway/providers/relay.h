// A provider's own stream event, relayed to a caller of the provider's wire format
// (StreamEvent::kAsIs): one home for what every such relay checks and takes out.
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <string_view>

#include "base/status.h"
#include "gateway/api/chat.h"

namespace iris::gateway::providers {

// One event of a provider's own stream for a caller of its wire format `dialect`: `raw` is its
// data as it came, `data` the same parsed. Its name `type` must be a plain word (1 to 64 bytes
// of a-z, '.', '_'), or the stream is refused as malformed (kDataLoss naming `provider`). What
// goes back is what callers' SDKs read: the type in the data too (they read it there, not in
// the event's name), and no `iris` member of the upstream's at the top, which would pass for
// iris's report (the caller takes out what else would, and says so in `changed`). The data is
// one line of JSON, so that it is one `data:` line again: `raw` itself when nothing changed.
Result<StreamEvent> RelayedEvent(std::string_view provider, Dialect dialect, std::string type,
                                 boost::json::object& data, std::string_view raw, bool changed);

}  // namespace iris::gateway::providers
