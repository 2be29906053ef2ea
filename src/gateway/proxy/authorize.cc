// Who may make this call. Runs after Decode (the model is known and checked) and before Plan.
// Open today: every caller that passed the server's and the browser guard's checks may call.
#include "gateway/proxy/call.h"

namespace iris::gateway::proxy {

Status Call::Authorize() { return OkStatus(); }

}  // namespace iris::gateway::proxy
