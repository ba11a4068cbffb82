// Just enough XML for S3's replies: the text of named elements, in order, with the five predefined entities
// decoded. S3's documents are flat and machine-written, so no general parser is needed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cairn::io::objstore {

// The raw contents of every <tag>...</tag> in `xml` (not nested inside another element of the same name).
std::vector<std::string_view> XmlElements(std::string_view xml, std::string_view tag);
// The first element's decoded text, or "" when there is none.
std::string XmlText(std::string_view xml, std::string_view tag);
std::string XmlUnescape(std::string_view text);
std::string XmlEscape(std::string_view text);

}  // namespace cairn::io::objstore
