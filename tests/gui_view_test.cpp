// View-hierarchy parsing and the compact screen forms, on hand-written dumps
// and on the realistic ones in data/gui-screens/.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/view_hierarchy.h"
#include "base/error.h"

namespace onellm {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const char* kSmall =
    "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n"
    "<!-- dumped by hand -->\n"
    "<hierarchy rotation=\"0\">\n"
    " <node class=\"android.widget.FrameLayout\" bounds=\"[0,0][1080,2400]\" package=\"p\">\n"
    "  <node class=\"android.widget.LinearLayout\" clickable=\"true\" bounds=\"[0,100][1080,300]\">\n"
    "   <node class=\"android.widget.TextView\" text=\"Wi&#x2011;Fi &amp; more\" bounds=\"[20,120][500,180]\"/>\n"
    "   <node class=\"android.widget.TextView\" text=\"Connected to \xe5\xae\xb6\" bounds=\"[20,180][500,240]\"/>\n"
    "   <node class=\"android.widget.Switch\" checkable=\"true\" checked=\"true\" clickable=\"true\" "
    "bounds=\"[900,150][1000,250]\" resource-id=\"p:id/switch\"/>\n"
    "  </node>\n"
    "  <![CDATA[ ignored <node> text ]]>\n"
    "  <node class=\"android.widget.EditText\" text=\"\" resource-id=\"p:id/name\" bounds=\"[0,400][1080,500]\"/>\n"
    "  <node class=\"android.widget.ImageView\" bounds=\"[0,500][100,600]\"/>\n"
    "  <node class=\"android.widget.Button\" text=\"Hidden\" clickable=\"true\" bounds=\"[0,0][0,0]\"/>\n"
    "  <node class=\"android.widget.Button\" text=\"Offscreen\" clickable=\"true\" bounds=\"[0,2500][100,2600]\"/>\n"
    "  <node class=\"android.widget.Button\" clickable=\"true\"/>\n"
    "  <node class=\"android.widget.TextView\" text=\"Footer\" bounds=\"[0,2000][1080,2100]\" enabled=\"false\"/>\n"
    " </node>\n"
    "</hierarchy>\n";

TEST(GuiView, ParsesNodesAttributesAndEntities) {
  ViewTree t = parse_view_xml(kSmall);
  ASSERT_EQ(t.nodes.size(), 11u);
  ASSERT_EQ(t.roots.size(), 1u);
  EXPECT_EQ(t.nodes[2].text, "Wi\u2011Fi & more");
  EXPECT_EQ(t.nodes[3].text, "Connected to \u5bb6");
  EXPECT_TRUE(t.nodes[4].checked);
  EXPECT_EQ(t.nodes[4].short_id(), "switch");
  EXPECT_EQ(t.nodes[4].bounds, (Bounds{900, 150, 1000, 250}));
  EXPECT_FALSE(t.nodes[9].has_bounds);  // missing attribute tolerated
  EXPECT_FALSE(t.nodes[10].enabled);
  EXPECT_EQ(t.xpath(4), "/hierarchy/node[1]/node[1]/node[3]");
  EXPECT_EQ(t.nodes[4].parent, 1);
}

TEST(GuiView, CompactFormsMergeTextAndDropInvisibleNodes) {
  ScreenView v = parse_screen(kSmall);
  // Row (with merged child text), its switch, the text field, the footer.
  ASSERT_EQ(v.elements.size(), 4u) << v.element_list();
  EXPECT_EQ(v.elements[0].tag, "button");
  EXPECT_EQ(v.elements[0].text, "Wi\u2011Fi & more Connected to \u5bb6");
  EXPECT_EQ(v.elements[1].tag, "checkbox");
  EXPECT_TRUE(v.elements[1].checked);
  EXPECT_EQ(v.elements[2].tag, "input");
  const std::string html = v.html();
  EXPECT_NE(html.find("<checkbox id=1 checked>switch</checkbox>"), std::string::npos) << html;
  EXPECT_NE(html.find("<input id=2 hint=\"name\">\n"), std::string::npos) << html;
  EXPECT_NE(html.find("&amp; more"), std::string::npos) << html;
  EXPECT_EQ(html.find("Hidden"), std::string::npos);
  EXPECT_EQ(html.find("Offscreen"), std::string::npos);
  EXPECT_NE(v.element_list().find("3: p \"Footer\" disabled"), std::string::npos) << v.element_list();
  // Index <-> node: a point inside the switch maps to the switch, not the row.
  EXPECT_EQ(v.element_at(950, 200), 1);
  EXPECT_EQ(v.element_at(100, 200), 0);
  EXPECT_EQ(v.elements[1].xpath, v.tree.xpath(v.elements[1].node));
}

TEST(GuiView, TruncatesLongTextAtCharacterBoundary) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "\xc3\xa9";  // é
  std::string xml = "<hierarchy><node class=\"android.widget.TextView\" text=\"" + text +
                    "\" bounds=\"[0,0][1080,100]\"/></hierarchy>";
  ScreenView v = parse_screen(xml);
  ASSERT_EQ(v.elements.size(), 1u);
  EXPECT_EQ(v.elements[0].text.size(), 60u * 2 + 3);
  EXPECT_EQ(v.elements[0].text.substr(120), "...");
}

TEST(GuiView, MalformedXmlIsAnErrorWithPosition) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "no root element"},
      {"<hierarchy><node text=\"a\"></hierarchy>", "does not match"},
      {"<hierarchy><node text=a/></hierarchy>", "must be quoted"},
      {"<hierarchy><node text=\"&bogus;\"/></hierarchy>", "unknown entity"},
      {"<hierarchy><node text=\"&#xD800;\"/></hierarchy>", "invalid code point"},
      {"<hierarchy>\n  <node text=\"x\"", "line 2"},
      {"<hierarchy></hierarchy><extra/>", "after the root"},
      {"<hierarchy><!-- open", "unterminated comment"},
      {"<hierarchy><node a=\"1\"b=\"2\"/></hierarchy>", "space before an attribute"},
  };
  for (const auto& [xml, expected] : cases) {
    try {
      parse_view_xml(xml);
      ADD_FAILURE() << "accepted: " << xml;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << xml << " -> " << e.what();
    }
  }
}

TEST(GuiView, DeepNestingHitsTheDepthLimitNotTheStack) {
  std::string xml = "<hierarchy>";
  for (int i = 0; i < 5000; ++i) xml += "<node bounds=\"[0,0][10,10]\">";
  EXPECT_THROW(parse_view_xml(xml), Error);
  ViewParseLimits limits;
  limits.max_depth = 10000;
  std::string ok = "<hierarchy>";
  for (int i = 0; i < 200; ++i) ok += "<node bounds=\"[0,0][10,10]\">";
  for (int i = 0; i < 200; ++i) ok += "</node>";
  ok += "</hierarchy>";
  EXPECT_EQ(parse_view_xml(ok, limits).nodes.size(), 200u);
}

TEST(GuiView, WriteThenParseKeepsEveryAttribute) {
  ViewTree t = parse_view_xml(kSmall);
  ViewTree again = parse_view_xml(write_view_xml(t));
  ASSERT_EQ(again.nodes.size(), t.nodes.size());
  for (size_t i = 0; i < t.nodes.size(); ++i) {
    EXPECT_EQ(again.nodes[i].text, t.nodes[i].text);
    EXPECT_EQ(again.nodes[i].checked, t.nodes[i].checked);
    EXPECT_EQ(again.nodes[i].enabled, t.nodes[i].enabled);
    if (t.nodes[i].has_bounds) {
      EXPECT_EQ(again.nodes[i].bounds, t.nodes[i].bounds);
    }
  }
}

TEST(GuiView, RealisticDumpsAreMuchSmallerInCompactForm) {
  const std::string dir = std::string(ONELLM_SOURCE_DIR) + "/data/gui-screens";
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".xml") continue;
    ++n;
    const std::string xml = read_text(entry.path());
    ScreenView v = parse_screen(xml);
    EXPECT_GE(v.elements.size(), 3u) << entry.path();
    EXPECT_LT(v.html().size() * 4, xml.size()) << entry.path();
    for (const ScreenElement& e : v.elements) {
      EXPECT_FALSE(e.bounds.empty()) << entry.path() << " " << e.xpath;
      EXPECT_EQ(v.tree.xpath(e.node), e.xpath);
      EXPECT_LE(e.text.size(), 60u * 4 + 3);
    }
  }
  EXPECT_GE(n, 8);
}

}  // namespace
}  // namespace onellm
