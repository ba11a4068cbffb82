#include "io/objstore/xml.h"

namespace cairn::io::objstore {

std::vector<std::string_view> XmlElements(std::string_view xml, std::string_view tag) {
  std::vector<std::string_view> out;
  const std::string open = "<" + std::string(tag);
  const std::string close = "</" + std::string(tag) + ">";
  size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string_view::npos) {
    const size_t after_name = pos + open.size();
    // "<Key>" or "<Key attr=...>", not "<KeyMarker>".
    if (after_name >= xml.size() || (xml[after_name] != '>' && xml[after_name] != ' ')) {
      pos = after_name;
      continue;
    }
    const size_t body = xml.find('>', after_name);
    if (body == std::string_view::npos) break;
    if (xml[body - 1] == '/') {  // <Tag/>
      out.emplace_back();
      pos = body + 1;
      continue;
    }
    const size_t end = xml.find(close, body + 1);
    if (end == std::string_view::npos) break;
    out.push_back(xml.substr(body + 1, end - body - 1));
    pos = end + close.size();
  }
  return out;
}

std::string XmlText(std::string_view xml, std::string_view tag) {
  auto elements = XmlElements(xml, tag);
  return elements.empty() ? std::string() : XmlUnescape(elements.front());
}

std::string XmlUnescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out.push_back(text[i]);
      continue;
    }
    const size_t semi = text.find(';', i);
    if (semi == std::string_view::npos) {
      out.append(text.substr(i));
      break;
    }
    std::string_view entity = text.substr(i + 1, semi - i - 1);
    if (entity == "amp")
      out.push_back('&');
    else if (entity == "lt")
      out.push_back('<');
    else if (entity == "gt")
      out.push_back('>');
    else if (entity == "quot")
      out.push_back('"');
    else if (entity == "apos")
      out.push_back('\'');
    else if (entity.starts_with("#x"))
      out.push_back(static_cast<char>(std::stoi(std::string(entity.substr(2)), nullptr, 16)));
    else if (entity.starts_with("#"))
      out.push_back(static_cast<char>(std::stoi(std::string(entity.substr(1)))));
    else
      out.append(text.substr(i, semi - i + 1));
    i = semi;
  }
  return out;
}

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

}  // namespace cairn::io::objstore
