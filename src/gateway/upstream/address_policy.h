// Which IP addresses a caller-steered connection (an image URL) may reach: public unicast
// only. Loopback, private, shared, link-local (cloud metadata at 169.254.169.254 included),
// unique-local, multicast, unspecified, documentation and reserved ranges are refused, for
// IPv4 and IPv6, with IPv4 embedded in IPv6 (mapped, compatible, NAT64, 6to4) judged as IPv4.
#pragma once

#include <boost/asio/ip/address.hpp>

namespace iris::gateway::upstream {

// True for a globally routable unicast address a gateway may fetch from on a caller's behalf.
bool IsPublicUnicast(const boost::asio::ip::address& address);

}  // namespace iris::gateway::upstream
