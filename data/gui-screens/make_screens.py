#!/usr/bin/env python3
"""Writes the realistic uiautomator dumps in this folder (run once; the .xml files are committed).

They imitate what `adb shell uiautomator dump` gives on a 1080x2400 phone: the app's window under
decorative FrameLayout/LinearLayout wrappers, a status bar and a navigation bar from SystemUI, icons
without text, and lists whose last rows are cut by the screen edge.
"""
import os
from xml.sax.saxutils import quoteattr

W, H = 1080, 2400
HERE = os.path.dirname(os.path.abspath(__file__))


class N:
    def __init__(self, cls, b, pkg, text="", rid="", desc="", children=None, **flags):
        self.cls, self.b, self.pkg, self.text, self.rid, self.desc = cls, b, pkg, text, rid, desc
        self.children = children or []
        self.flags = flags

    def xml(self, index):
        f = dict(checkable=False, checked=False, clickable=False, enabled=True, focusable=False, focused=False,
                 scrollable=False, **{"long-clickable": False}, password=False, selected=False)
        for k, v in self.flags.items():
            f[k.replace("_", "-")] = v
        rid = (self.pkg + ":id/" + self.rid) if self.rid and ":" not in self.rid else self.rid
        attrs = [("index", str(index)), ("text", self.text), ("resource-id", rid), ("class", self.cls),
                 ("package", self.pkg), ("content-desc", self.desc)]
        attrs += [(k, "true" if f[k] else "false") for k in ["checkable", "checked", "clickable", "enabled", "focusable",
                                                             "focused", "scrollable", "long-clickable", "password",
                                                             "selected"]]
        l, t, r, b = self.b
        attrs.append(("bounds", f"[{l},{t}][{r},{b}]"))
        s = "<node " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs)
        if not self.children:
            return s + " />"
        return s + ">" + "".join(c.xml(i) for i, c in enumerate(self.children)) + "</node>"


def system_bars():
    ui = "com.android.systemui"
    status = N("android.widget.FrameLayout", (0, 0, W, 96), ui, rid="status_bar", children=[
        N("android.widget.TextView", (48, 20, 180, 76), ui, text="9:41", rid="clock"),
        N("android.widget.LinearLayout", (820, 20, 1032, 76), ui, rid="system_icons", children=[
            N("android.widget.ImageView", (820, 20, 880, 76), ui, desc="Wifi signal full."),
            N("android.widget.ImageView", (890, 20, 950, 76), ui, desc="Phone signal full."),
            N("android.widget.ImageView", (960, 20, 1032, 76), ui, desc="Battery 87 percent."),
        ]),
    ])
    nav = N("android.widget.FrameLayout", (0, 2274, W, H), ui, rid="navigation_bar_frame", children=[
        N("android.widget.ImageView", (180, 2274, 360, 2400), ui, rid="back", desc="Back", clickable=True),
        N("android.widget.ImageView", (450, 2274, 630, 2400), ui, rid="home", desc="Home", clickable=True,
          long_clickable=True),
        N("android.widget.ImageView", (720, 2274, 900, 2400), ui, rid="recent_apps", desc="Overview", clickable=True),
    ])
    return [status, nav]


def window(pkg, content):
    # DecorView -> LinearLayout -> FrameLayout(content) as on a real phone.
    return N("android.widget.FrameLayout", (0, 0, W, H), pkg, children=[
        N("android.widget.LinearLayout", (0, 0, W, H), pkg, children=[
            N("android.widget.FrameLayout", (0, 96, W, 2274), pkg, rid="android:id/content", children=content)])])


def toolbar(pkg, title, top=96, actions=()):
    kids = [N("android.widget.ImageButton", (0, top, 147, top + 147), pkg, desc="Navigate up", clickable=True,
              focusable=True),
            N("android.widget.TextView", (189, top + 40, 700, top + 107), pkg, text=title)]
    x = W - 147 * len(actions)
    for desc in actions:
        kids.append(N("android.widget.Button", (x, top, x + 147, top + 147), pkg, desc=desc, clickable=True,
                      focusable=True))
        x += 147
    return N("android.view.ViewGroup", (0, top, W, top + 147), pkg, rid="toolbar", children=kids)


def dump(name, roots):
    body = "".join(r.xml(i) for i, r in enumerate(roots))
    xml = "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation=\"0\">" + body + "</hierarchy>"
    with open(os.path.join(HERE, name + ".xml"), "w", encoding="utf-8") as f:
        f.write(xml)


def settings_main():
    pkg = "com.android.settings"
    items = [("Network & internet", "Wi‑Fi, mobile, data usage, and hotspot"),
             ("Connected devices", "Bluetooth, pairing"), ("Apps", "Recent apps, default apps"),
             ("Notifications", "Notification history, conversations"), ("Battery", "87% - About 1 day left"),
             ("Storage", "54% used - 58.9 GB free"), ("Sound & vibration", "Volume, haptics, Do Not Disturb"),
             ("Display", "Dark theme, font size, brightness"), ("Wallpaper & style", "Colors, themed icons"),
             ("Accessibility", "Display, interaction, audio"), ("Security & privacy", "App security, device lock"),
             ("Location", "On - 9 apps have access to location"), ("System", "Languages, gestures, time, backup")]
    rows, y = [], 420
    for title, summary in items:
        rows.append(N("android.widget.LinearLayout", (0, y, W, y + 189), pkg, clickable=True, focusable=True, children=[
            N("android.widget.LinearLayout", (0, y, 189, y + 189), pkg, rid="icon_frame", children=[
                N("android.widget.ImageView", (63, y + 63, 126, y + 126), pkg, rid="android:id/icon")]),
            N("android.widget.RelativeLayout", (189, y + 40, 1038, y + 149), pkg, children=[
                N("android.widget.TextView", (189, y + 40, 700, y + 94), pkg, text=title, rid="android:id/title"),
                N("android.widget.TextView", (189, y + 94, 1000, y + 149), pkg, text=summary,
                  rid="android:id/summary")])]))
        y += 189
    search = N("android.widget.LinearLayout", (42, 250, 1038, 390), pkg, rid="search_bar", clickable=True,
               children=[N("android.widget.TextView", (150, 290, 800, 350), pkg, text="Search settings",
                           rid="search_action_bar_title")])
    clipped = [N("android.widget.LinearLayout", (r.b[0], r.b[1], r.b[2], min(r.b[3], 2274)), pkg, children=r.children,
                 clickable=True, focusable=True) for r in rows if r.b[1] < 2274]
    lst = N("androidx.recyclerview.widget.RecyclerView", (0, 420, W, 2274), pkg, rid="recycler_view",
            scrollable=True, focusable=True, children=clipped)
    dump("settings_main", [window(pkg, [N("android.widget.TextView", (63, 130, 600, 230), pkg, text="Settings",
                                          rid="homepage_title"), search, lst])] + system_bars())


def contacts_list():
    pkg = "com.google.android.contacts"
    names = ["Aaron Becker", "Abigail Chen", "Adrián Núñez", "Ahmed Al-Farsi", "Alice Johnson", "Amélie Dubois",
             "Ana Souza", "Andrew Kim", "Anja Müller", "Arjun Patel", "Ava Thompson", "Benjamin Walker",
             "Björn Lindqvist", "Brian O'Connor", "Camille Laurent", "Carlos Mendoza", "Chloé Martin",
             "Daniel Garcia", "David Cohen", "Dmitri Ivanov", "Elena Rossi", "Emily Davis", "Fatima Zahra",
             "François Petit", "Gabriel Silva", "Grace Lee", "Hannah Schmidt", "Hiroshi Tanaka", "Ingrid Olsen",
             "Isabella Romano"]
    rows, y = [], 396
    for i, name in enumerate(names):
        if y >= 2100:
            break
        rows.append(N("android.view.ViewGroup", (0, y, W, min(y + 168, 2100)), pkg, rid="cliv_container",
                      clickable=True, long_clickable=True, focusable=True, children=[
                          N("android.widget.QuickContactBadge", (42, y + 21, 168, min(y + 147, 2100)), pkg,
                            rid="cliv_avatar", desc="Quick contact for " + name, clickable=True),
                          N("android.widget.TextView", (210, y + 50, 900, min(y + 118, 2100)), pkg, text=name,
                            rid="cliv_name_textview")]))
        y += 168
    sections = [N("android.widget.TextView", (0, 360, 120, 396), pkg, text="A", rid="section_header")]
    lst = N("android.widget.ListView", (0, 360, W, 2100), pkg, rid="android:id/list", scrollable=True,
            focusable=True, children=sections + rows)
    search = N("android.widget.EditText", (42, 222, 1038, 338), pkg, text="Search contacts", rid="open_search_bar",
               clickable=True, focusable=True)
    fab = N("android.widget.ImageButton", (822, 1932, 1017, 2079), pkg, rid="floating_action_button",
            desc="Create contact", clickable=True, focusable=True)
    tabs = N("android.widget.LinearLayout", (0, 2100, W, 2274), pkg, rid="bottom_nav", children=[
        N("android.widget.FrameLayout", (0, 2100, 540, 2274), pkg, desc="Contacts", clickable=True, selected=True,
          children=[N("android.widget.TextView", (200, 2200, 340, 2250), pkg, text="Contacts")]),
        N("android.widget.FrameLayout", (540, 2100, W, 2274), pkg, desc="Highlights", clickable=True,
          children=[N("android.widget.TextView", (740, 2200, 880, 2250), pkg, text="Highlights")])])
    dump("contacts_long_list", [window(pkg, [toolbar(pkg, "Contacts", actions=["More options"]), search, lst, fab,
                                             tabs])] + system_bars())


def messages_thread():
    pkg = "com.google.android.apps.messaging"
    msgs = [("in", "Hi! Are we still on for dinner tomorrow? 🍝"), ("out", "Yes! 7pm at Lucía's place?"),
            ("in", "Perfect. Can you bring the 红酒 we talked about?"),
            ("out", "Sure, and I'll pick up dessert from the Bäckerei on the way. Do you want the "
                    "Schwarzwälder Kirschtorte or the apple strudel? They also have a lemon tart that "
                    "everyone keeps recommending."),
            ("in", "Kirschtorte 😍 see you then!")]
    kids, y = [], 300
    for who, text in msgs:
        h = 126 + 63 * (len(text) // 40)
        x0, x1 = (42, 760) if who == "in" else (320, 1038)
        kids.append(N("android.view.ViewGroup", (0, y, W, y + h), pkg, rid="message_content", long_clickable=True,
                      children=[N("android.widget.LinearLayout", (x0, y, x1, y + h), pkg, rid="message_bubble",
                                  children=[N("android.widget.TextView", (x0 + 42, y + 30, x1 - 42, y + h - 30), pkg,
                                              text=text, rid="message_text")])]))
        y += h + 40
    lst = N("androidx.recyclerview.widget.RecyclerView", (0, 243, W, 2000), pkg, rid="messages_list",
            scrollable=True, focusable=True, children=kids)
    compose = N("android.widget.LinearLayout", (0, 2000, W, 2274), pkg, rid="compose_message_view", children=[
        N("android.widget.ImageButton", (21, 2060, 147, 2186), pkg, desc="Add attachment", clickable=True),
        N("android.widget.EditText", (168, 2050, 880, 2200), pkg, text="Text message", rid="compose_message_text",
          clickable=True, focusable=True, long_clickable=True),
        N("android.widget.ImageButton", (900, 2060, 1038, 2186), pkg, rid="send_message_button_icon",
          desc="Send SMS", clickable=True, enabled=False)])
    dump("messages_thread", [window(pkg, [toolbar(pkg, "Lucía Fernández", actions=["Call", "Details"]), lst,
                                          compose])] + system_bars())


def alarm_dialog():
    pkg = "com.google.android.deskclock"
    alarms = [("6:30 AM", "Weekdays", True), ("7:45 AM", "Gym", False), ("9:00 AM", "Sat, Sun", False)]
    rows, y = [], 400
    for t, label, on in alarms:
        rows.append(N("android.widget.FrameLayout", (0, y, W, y + 300), pkg, clickable=True, children=[
            N("android.widget.TextView", (63, y + 40, 600, y + 180), pkg, text=t, rid="digital_clock"),
            N("android.widget.TextView", (63, y + 190, 600, y + 250), pkg, text=label, rid="days_of_week"),
            N("android.widget.Switch", (850, y + 80, 1017, y + 160), pkg, rid="onoff", checkable=True, checked=on,
              clickable=True, text="ON" if on else "OFF")]))
        y += 320
    base = window(pkg, [toolbar(pkg, "Alarm"), N("androidx.recyclerview.widget.RecyclerView", (0, 380, W, 2100), pkg,
                                                 rid="alarm_recycler_view", scrollable=True, children=rows)])
    pk = "com.google.android.deskclock"
    dialog = N("android.widget.FrameLayout", (63, 600, 1017, 1900), pk, children=[
        N("android.widget.LinearLayout", (63, 600, 1017, 1900), pk, rid="android:id/parentPanel", children=[
            N("android.widget.TextView", (126, 650, 900, 720), pk, text="Select time", rid="material_timepicker_title"),
            N("android.widget.EditText", (126, 780, 480, 1000), pk, text="07", rid="material_hour_text_input",
              clickable=True, focusable=True, focused=True),
            N("android.widget.TextView", (490, 800, 530, 980), pk, text=":"),
            N("android.widget.EditText", (540, 780, 894, 1000), pk, text="30", rid="material_minute_text_input",
              clickable=True, focusable=True),
            N("android.widget.LinearLayout", (126, 1020, 894, 1080), pk, children=[
                N("android.widget.TextView", (126, 1020, 480, 1080), pk, text="Hour"),
                N("android.widget.TextView", (540, 1020, 894, 1080), pk, text="Minute")]),
            N("com.google.android.material.button.MaterialButtonToggleGroup", (910, 780, 1000, 1000), pk,
              rid="material_clock_period_toggle", children=[
                  N("android.widget.Button", (910, 780, 1000, 890), pk, text="AM", checkable=True, checked=True,
                    clickable=True),
                  N("android.widget.Button", (910, 890, 1000, 1000), pk, text="PM", checkable=True,
                    clickable=True)]),
            N("android.widget.ImageButton", (126, 1750, 252, 1876), pk, desc="Switch to clock mode for the time "
              "input.", clickable=True),
            N("android.widget.Button", (600, 1760, 800, 1870), pk, text="Cancel", rid="material_timepicker_cancel_button",
              clickable=True),
            N("android.widget.Button", (820, 1760, 990, 1870), pk, text="OK", rid="material_timepicker_ok_button",
              clickable=True)])])
    dump("alarm_time_dialog", [base, dialog] + system_bars())


def shopping_product():
    pkg = "com.example.shop"
    desc = ("Lightweight trail running shoe with a breathable mesh upper, a responsive foam midsole and a "
            "grippy rubber outsole with 4 mm lugs for mixed terrain. Reflective details for early morning runs. "
            "Weight 265 g (US 9). Drop 6 mm.")
    content = [
        toolbar(pkg, "", actions=["Search", "Cart, 2 items"]),
        N("android.widget.ScrollView", (0, 243, W, 2100), pkg, rid="product_scroll", scrollable=True, children=[
            N("android.widget.LinearLayout", (0, 243, W, 2700), pkg, children=[
                N("androidx.viewpager.widget.ViewPager", (0, 243, W, 1100), pkg, rid="image_pager", scrollable=True,
                  children=[N("android.widget.ImageView", (0, 243, W, 1100), pkg, desc="Product image 1 of 5")]),
                N("android.widget.TextView", (42, 1130, 1038, 1250), pkg, text="TrailFlex 3 Running Shoe – Men's",
                  rid="product_title"),
                N("android.widget.LinearLayout", (42, 1260, 700, 1320), pkg, rid="rating", clickable=True, children=[
                    N("android.widget.RatingBar", (42, 1260, 330, 1320), pkg, desc="4.5 out of 5 stars"),
                    N("android.widget.TextView", (340, 1260, 700, 1320), pkg, text="(1,284 reviews)")]),
                N("android.widget.TextView", (42, 1340, 500, 1440), pkg, text="€89.99", rid="price"),
                N("android.widget.TextView", (42, 1450, 1038, 1510), pkg, text="Size"),
                N("android.widget.HorizontalScrollView", (42, 1520, 1038, 1640), pkg, scrollable=True, children=[
                    N("android.widget.RadioButton", (42 + 160 * i, 1520, 190 + 160 * i, 1640), pkg, text=s,
                      checkable=True, checked=(s == "42"), clickable=True)
                    for i, s in enumerate(["40", "41", "42", "43", "44", "45"])]),
                N("android.widget.TextView", (42, 1660, 1038, 1960), pkg, text=desc, rid="description"),
                N("android.widget.TextView", (42, 1980, 600, 2040), pkg, text="Free delivery by Friday",
                  rid="delivery")])]),
        N("android.widget.LinearLayout", (0, 2100, W, 2274), pkg, children=[
            N("android.widget.Button", (42, 2120, 520, 2254), pkg, text="Add to cart", rid="add_to_cart",
              clickable=True),
            N("android.widget.Button", (560, 2120, 1038, 2254), pkg, text="Buy now", rid="buy_now", clickable=True)])]
    dump("shopping_product", [window(pkg, content)] + system_bars())


def email_inbox():
    pkg = "com.google.android.gm"
    mails = [("GitHub", "[onellm] Issue #8: GUI agents over view hierarchies", "Most apps expose no API, so a "
              "device agent must read the screen and act on it...", "2:14 AM", True),
             ("Deutsche Bahn", "Ihre Buchungsbestätigung – ICE 578 München → Berlin", "Vielen Dank für Ihre "
              "Buchung. Ihre Reservierung: Wagen 12, Platz 54...", "Yesterday", False),
             ("Mom", "Sunday lunch", "Don't forget to bring the photos from the trip!", "Yesterday", True),
             ("Spotify", "Your 2026 Wrapped is here 🎉", "See the songs, artists and podcasts that defined your "
              "year...", "Nov 29", False),
             ("田中 浩", "会議の資料について", "お疲れ様です。明日の会議の資料を添付しました。ご確認ください。", "Nov 28", False),
             ("Bank of Example", "Your statement is ready", "Your November statement for account ending 4821 is "
              "now available online.", "Nov 27", False),
             ("Airline", "Check-in is open for your flight", "Flight EX 1234 from LIS to AMS departs Dec 3 at "
              "06:40...", "Nov 27", False),
             ("Newsletter", "10 tips for better sleep", "Tip 1: keep a regular schedule, even on weekends...",
              "Nov 26", False)]
    rows, y = [], 390
    for sender, subject, snippet, when, unread in mails:
        if y >= 2274:
            break
        b = min(y + 240, 2274)
        rows.append(N("android.widget.FrameLayout", (0, y, W, b), pkg, rid="viewified_conversation_item_view",
                      desc=("Unread, " if unread else "") + f"{sender}, {subject}, {snippet}, {when}",
                      clickable=True, long_clickable=True, focusable=True, children=[
                          N("android.widget.ImageView", (42, y + 40, 168, min(y + 166, b)), pkg, rid="contact_image",
                            clickable=True, desc="Select conversation"),
                          N("android.view.View", (190, y + 20, 1038, b), pkg, rid="conversation_item"),
                      ]))
        y += 240
    lst = N("androidx.recyclerview.widget.RecyclerView", (0, 390, W, 2274), pkg, rid="thread_list_view",
            scrollable=True, focusable=True, children=rows)
    search = N("android.widget.FrameLayout", (42, 130, 1038, 250), pkg, rid="open_search", children=[
        N("android.widget.ImageButton", (63, 150, 170, 230), pkg, desc="Open navigation drawer", clickable=True),
        N("android.widget.TextView", (190, 160, 700, 220), pkg, text="Search in mail", rid="search_text",
          clickable=True),
        N("android.widget.ImageView", (920, 150, 1010, 230), pkg, desc="Account and settings", clickable=True)])
    fab = N("android.widget.Button", (660, 1990, 1017, 2140), pkg, text="Compose", rid="compose_button",
            clickable=True, focusable=True)
    dump("email_inbox", [window(pkg, [search, N("android.widget.TextView", (42, 300, 400, 370), pkg, text="Primary"),
                                      lst, fab])] + system_bars())


def login_form():
    pkg = "com.example.bank"
    content = [
        N("android.widget.ImageView", (390, 250, 690, 550), pkg, rid="logo"),
        N("android.widget.TextView", (63, 600, 1017, 700), pkg, text="Welcome back", rid="title"),
        N("android.widget.EditText", (63, 760, 1017, 900), pkg, text="Email or username", rid="username",
          clickable=True, focusable=True, long_clickable=True),
        N("android.widget.EditText", (63, 940, 900, 1080), pkg, text="••••••••", rid="password", clickable=True,
          focusable=True, long_clickable=True, password=True),
        N("android.widget.ImageButton", (900, 960, 1017, 1060), pkg, rid="text_input_end_icon",
          desc="Show password", clickable=True, checkable=True),
        N("android.widget.CheckBox", (63, 1110, 700, 1210), pkg, text="Remember me", rid="remember", checkable=True,
          clickable=True),
        N("android.widget.Button", (63, 1260, 1017, 1400), pkg, text="Sign in", rid="sign_in", clickable=True,
          enabled=False),
        N("android.widget.TextView", (300, 1450, 780, 1520), pkg, text="Forgot password?", rid="forgot",
          clickable=True),
        N("android.view.View", (0, 1600, W, 1602), pkg, rid="divider"),
        N("android.widget.TextView", (63, 2100, 1017, 2250), pkg,
          text="By signing in you agree to the Terms of Service and the Privacy Policy. Your data is processed in "
               "accordance with applicable law. Example Bank is a registered trademark.", rid="legal")]
    dump("login_form", [window(pkg, content)] + system_bars())


def permission_dialog():
    pkg = "com.google.android.permissioncontroller"
    app = "com.example.maps"
    base = window(app, [N("android.view.View", (0, 96, W, 2274), app, rid="map_view", desc="Google Map",
                          clickable=True, scrollable=True)])
    dialog = N("android.widget.FrameLayout", (0, 1200, W, 2274), pkg, children=[
        N("android.widget.LinearLayout", (42, 1240, 1038, 2230), pkg, rid="grant_dialog", children=[
            N("android.widget.ImageView", (480, 1280, 600, 1400), pkg, rid="permission_icon"),
            N("android.widget.TextView", (84, 1420, 996, 1560), pkg,
              text="Allow Maps to access this device's location?", rid="permission_message"),
            N("android.widget.RadioGroup", (84, 1580, 996, 1800), pkg, children=[
                N("android.widget.RadioButton", (84, 1580, 540, 1800), pkg, text="Precise", checkable=True,
                  checked=True, clickable=True, rid="permission_location_accuracy_radio_fine"),
                N("android.widget.RadioButton", (540, 1580, 996, 1800), pkg, text="Approximate", checkable=True,
                  clickable=True, rid="permission_location_accuracy_radio_coarse")]),
            N("android.widget.Button", (84, 1820, 996, 1940), pkg, text="While using the app",
              rid="permission_allow_foreground_only_button", clickable=True),
            N("android.widget.Button", (84, 1960, 996, 2080), pkg, text="Only this time",
              rid="permission_allow_one_time_button", clickable=True),
            N("android.widget.Button", (84, 2100, 996, 2220), pkg, text="Don’t allow",
              rid="permission_deny_button", clickable=True)])])
    dump("permission_dialog", [base, dialog] + system_bars())


def launcher_home():
    pkg = "com.google.android.apps.nexuslauncher"
    apps = ["Phone", "Messages", "Chrome", "Camera", "Clock", "Contacts", "Settings", "Play Store", "Photos",
            "Calendar", "Maps", "YouTube", "Gmail", "Drive", "Files", "Notes"]
    icons = []
    for i, a in enumerate(apps):
        r, c = divmod(i, 4)
        x, y = 40 + c * 250, 900 + r * 300
        icons.append(N("android.widget.TextView", (x, y, x + 250, y + 280), pkg, text=a, desc=a, clickable=True,
                       long_clickable=True, focusable=True))
    grid = N("android.view.ViewGroup", (0, 880, W, 2100), pkg, rid="workspace", scrollable=True, children=icons)
    glance = N("android.view.ViewGroup", (40, 200, 1040, 400), pkg, rid="smartspace", children=[
        N("android.widget.TextView", (40, 200, 800, 300), pkg, text="Tue, Dec 1", clickable=True),
        N("android.widget.TextView", (40, 300, 800, 380), pkg, text="☁ 12°C Lisboa", clickable=True)])
    search = N("android.widget.FrameLayout", (40, 2120, 1040, 2250), pkg, rid="search_container_hotseat",
               desc="Search", clickable=True)
    dump("launcher_home", [window(pkg, [glance, grid, search])] + system_bars())


if __name__ == "__main__":
    for f in [settings_main, contacts_list, messages_thread, alarm_dialog, shopping_product, email_inbox, login_form,
              permission_dialog, launcher_home]:
        f()
