// Boost.URL's implementation, compiled once into this module (Debian ships it as headers).
#include <boost/url/src.hpp>
