#!/usr/bin/env python3
"""Writes data/agent-tasks/device-tasks.jsonl: onellm's agent tasks on the simulated device.
Each task: a request, an optional initial state (merged over the default device), a predicate on
the final state ("check", see docs/architecture.md) and the expected calls. The tests replay the
expected calls on a real Device and require the check to fail before and pass after."""
import json
import os

tasks = []


def task(request, check, calls, initial=None):
    t = {"id": "t%03d" % (len(tasks) + 1), "request": request}
    if initial:
        t["initial_state"] = initial
    t["check"] = check
    t["expected_calls"] = [{"name": n, "arguments": a} for n, a in calls]
    tasks.append(t)


def has(path, pattern):
    return {"path": path, "contains": pattern}


def eq(path, value):
    return {"path": path, "equals": value}


def all_of(*ps):
    return {"all": list(ps)}


# Alarms
for text, h, m, label in [("Wake me up at 6:30", 6, 30, None), ("Set an alarm for 5:45 am", 5, 45, None),
                          ("Set an alarm at 7:15 pm called gym", 19, 15, "gym"),
                          ("Alarm for 9 tonight to take my pills", 21, 0, "take my pills"),
                          ("I need an alarm at 12:05", 12, 5, None)]:
    args = {"hour": h, "minute": m}
    if label:
        args["label"] = label
    task(text, has("/alarms", args), [("set_alarm", args)])
for text, h, m in [("Delete my 7 am alarm", 7, 0), ("Remove the alarm at 6:15", 6, 15),
                   ("Cancel the 22:30 alarm", 22, 30)]:
    init = {"alarms": [{"id": 1, "hour": 7, "minute": 0, "label": "work", "enabled": True},
                       {"id": 9, "hour": 6, "minute": 15, "label": "", "enabled": True},
                       {"id": 10, "hour": 22, "minute": 30, "label": "bed", "enabled": True}]}
    task(text, {"not": has("/alarms", {"hour": h, "minute": m})}, [("delete_alarm", {"hour": h, "minute": m})], init)
for text in ["What alarms do I have?", "Show me my alarms", "Which alarms are set?"]:
    task(text, eq("/screen/view", "alarms"), [("show_alarms", {})])

# Timers
for text, dur, secs, label in [("Set a timer for 10 minutes", "10 minutes", 600, None),
                               ("Start a 1 hour 30 minutes timer", "1 hour 30 minutes", 5400, None),
                               ("Timer for 45 seconds", "45 seconds", 45, None),
                               ("Set a pasta timer for 12 minutes", "12 minutes", 720, "pasta"),
                               ("Count down 2 hours for the laundry", "2 hours", 7200, "laundry")]:
    args = {"duration": dur}
    pattern = {"seconds": secs}
    if label:
        args["label"] = label
        pattern["label"] = label
    task(text, has("/timers", pattern), [("set_timer", args)])
running = {"timers": [{"id": 5, "duration": "10 minutes", "seconds": 600, "label": "eggs"},
                      {"id": 6, "duration": "1 hour", "seconds": 3600, "label": "bread"}]}
task("Cancel the eggs timer", all_of({"not": has("/timers", {"label": "eggs"})}, has("/timers", {"label": "bread"})),
     [("cancel_timer", {"label": "eggs"})], running)
task("Stop the bread timer", all_of({"not": has("/timers", {"label": "bread"})}, has("/timers", {"label": "eggs"})),
     [("cancel_timer", {"label": "bread"})], running)
task("Cancel all my timers", {"path": "/timers", "count": 0}, [("cancel_timer", {})], running)

# Calendar
for text, args in [("Add lunch with Sam on friday at 12:30", {"title": "lunch with Sam", "date": "friday", "time": "12:30"}),
                   ("Put team meeting on my calendar for tomorrow at 09:00", {"title": "team meeting", "date": "tomorrow", "time": "09:00"}),
                   ("Schedule yoga on monday at 18:00 at the community center",
                    {"title": "yoga", "date": "monday", "time": "18:00", "location": "the community center"}),
                   ("Create an event called mom's birthday on march 4", {"title": "mom's birthday", "date": "march 4"}),
                   ("Add a dentist checkup on june 3 at 10:15", {"title": "dentist checkup", "date": "june 3", "time": "10:15"})]:
    pattern = {k: v for k, v in args.items() if k in ("date", "time")}
    pattern["title"] = args["title"]
    task(text, has("/events", pattern), [("create_event", args)])
for text, date in [("What's on my calendar friday?", "friday"), ("Show my events for tomorrow", "tomorrow")]:
    task(text, all_of(eq("/screen/app", "calendar"), eq("/screen/date", date)), [("list_events", {"date": date})])
task("Show all my calendar events", eq("/screen/app", "calendar"), [("list_events", {})])
task("Delete the dentist appointment from my calendar", {"not": has("/events", {"title": "dentist"})},
     [("delete_event", {"title": "dentist"})])
task("Remove book club from my calendar", {"not": has("/events", {"title": "book club"})},
     [("delete_event", {"title": "book club"})],
     {"events": [{"id": 4, "title": "book club", "date": "thursday", "time": "19:00", "location": ""}]})

# Contacts
for text, args in [("Save a new contact Nina with number 555 0199", {"name": "Nina", "phone": "555 0199"}),
                   ("Add Omar to my contacts, email omar@example.org", {"name": "Omar", "email": "omar@example.org"}),
                   ("Create a contact for Lena, phone +44 20 7946 0000",
                    {"name": "Lena", "phone": "+44 20 7946 0000"}),
                   ("Add contact Ben, 555 0142, ben@example.net", {"name": "Ben", "phone": "555 0142", "email": "ben@example.net"})]:
    task(text, has("/contacts", args), [("add_contact", args)])
for text, name, field in [("What's Alex's phone number?", "Alex", "phone"), ("What is Priya's email?", "Priya", "email"),
                          ("Where does Mom live?", "Mom", "address"), ("When is Alex's birthday?", "Alex", "birthday")]:
    task(text, all_of(eq("/screen/contact", name), eq("/screen/field", field)),
         [("get_contact", {"name": name, "field": field})])
task("Delete Sam from my contacts", {"not": has("/contacts", {"name": "Sam"})}, [("delete_contact", {"name": "Sam"})])
task("Remove the contact Jordan", {"not": has("/contacts", {"name": "Jordan"})}, [("delete_contact", {"name": "Jordan"})])

# Calls and messages
for text, who in [("Call Mom", "Mom"), ("Phone Alex", "Alex"), ("Ring Dr. Lee", "Dr. Lee"), ("Call 555 0177", "555 0177")]:
    task(text, has("/calls", {"contact": who}), [("call", {"contact": who})])
for text, to, body in [("Text Alex that I'm running late", "Alex", "I'm running late"),
                       ("Send Mom a message saying happy birthday", "Mom", "happy birthday"),
                       ("Message Sam: see you at 8", "Sam", "see you at 8"),
                       ("Tell Priya by text that the meeting moved to 3", "Priya", "the meeting moved to 3"),
                       ("Send 555 0123 a text: on my way", "555 0123", "on my way")]:
    task(text, has("/messages", {"to": to, "body": body}), [("send_message", {"to": to, "body": body})])
for text, to, subj, body in [("Email Priya with subject Report and say the draft is attached", "Priya", "Report", "the draft is attached"),
                             ("Send an email to alex@example.com, subject Lunch, body are you free friday?",
                              "alex@example.com", "Lunch", "are you free friday?"),
                             ("Email Mom subject Visit saying we arrive sunday", "Mom", "Visit", "we arrive sunday"),
                             ("Write Jordan an email titled Thanks saying thank you for the help", "Jordan", "Thanks", "thank you for the help")]:
    task(text, has("/emails", {"to": to, "subject": subj}), [("send_email", {"to": to, "subject": subj, "body": body})])

# Search and maps
for q in ["weather in Lisbon", "how tall is the Eiffel Tower", "best pancake recipe", "train times to Boston"]:
    task("Search the web for " + q, has("/web_searches", {"query": q}), [("web_search", {"query": q})])
for text, q in [("Find a coffee shop nearby", "coffee shop"), ("Where is the nearest pharmacy?", "pharmacy"),
                ("Look up gas stations on the map", "gas stations"), ("Find Central Park on the map", "Central Park")]:
    task(text, has("/map_searches", {"query": q}), [("find_place", {"query": q})])
for text, dest, mode in [("Navigate to the airport", "the airport", None), ("Walk me to the library", "the library", "walking"),
                         ("Directions to 40 Elm Street by transit", "40 Elm Street", "transit"),
                         ("Take me to the stadium by bike", "the stadium", "cycling"),
                         ("Drive to Main Street Clinic", "Main Street Clinic", "driving")]:
    args = {"destination": dest}
    if mode:
        args["mode"] = mode
    task(text, all_of(eq("/navigation/destination", dest), eq("/navigation/mode", mode or "driving")), [("navigate", args)])

# Settings
for text, setting, on in [("Turn on bluetooth", "bluetooth", True), ("Turn off wifi", "wifi", False),
                          ("Enable airplane mode", "airplane_mode", True), ("Turn on do not disturb", "do_not_disturb", True),
                          ("Switch on the flashlight", "flashlight", True), ("Enable dark mode", "dark_mode", True),
                          ("Turn off location", "location", False), ("Disable mobile data", "mobile_data", False),
                          ("Turn on battery saver", "battery_saver", True)]:
    task(text, eq("/settings/" + setting, on), [("toggle_setting", {"setting": setting, "on": on})])
for text, page in [("Open the display settings", "display"), ("Show me battery settings", "battery"),
                   ("Go to storage settings", "storage"), ("Open notification settings", "notifications"),
                   ("Open the privacy settings", "privacy")]:
    task(text, eq("/settings_page", page), [("open_settings", {"page": page})])
for text, level in [("Set the brightness to 30 percent", 30), ("Make the screen brightness 100%", 100), ("Dim the screen to 10", 10)]:
    task(text, eq("/settings/brightness", level), [("set_brightness", {"level": level})])
for text, level, stream in [("Set the volume to 20", 20, None), ("Set the ring volume to 90 percent", 90, "ring"),
                            ("Alarm volume 40 please", 40, "alarm")]:
    args = {"level": level}
    if stream:
        args["stream"] = stream
    task(text, eq("/settings/volume_" + (stream or "media"), level), [("set_volume", args)])

# Camera
for text, cam in [("Take a photo", None), ("Take a selfie", "front"), ("Snap a picture with the back camera", "back")]:
    args = {} if cam is None else {"camera": cam}
    task(text, has("/media", {"kind": "photo", "camera": cam or "back"}), [("take_photo", args)])
for text, cam in [("Record a video", None), ("Record a video with the front camera", "front"), ("Start filming", None)]:
    args = {} if cam is None else {"camera": cam}
    task(text, has("/media", {"kind": "video", "camera": cam or "back"}), [("record_video", args)])

# Documents
for text, name, typ in [("Create a spreadsheet called expenses", "expenses", "spreadsheet"),
                        ("Start a new text document named shopping list", "shopping list", "text"),
                        ("Make a presentation called quarterly review", "quarterly review", "presentation"),
                        ("Create a pdf named invoice", "invoice", "pdf")]:
    task(text, has("/documents", {"name": name, "type": typ}), [("create_document", {"name": name, "type": typ})])
for text, name in [("Open my budget", "budget"), ("Open the meeting notes", "meeting notes"), ("Show me my resume", "resume")]:
    task(text, eq("/open_document", name), [("open_document", {"name": name})])
task("Delete the resume document", {"not": has("/documents", {"name": "resume"})}, [("delete_document", {"name": "resume"})])
task("Remove my budget spreadsheet", {"not": has("/documents", {"name": "budget"})}, [("delete_document", {"name": "budget"})])

# Several steps
task("Text Alex that I'm running late and set a timer for 5 minutes",
     all_of(has("/messages", {"to": "Alex"}), has("/timers", {"seconds": 300})),
     [("send_message", {"to": "Alex", "body": "I'm running late"}), ("set_timer", {"duration": "5 minutes"})])
task("Turn on do not disturb and set an alarm for 6:00",
     all_of(eq("/settings/do_not_disturb", True), has("/alarms", {"hour": 6, "minute": 0})),
     [("toggle_setting", {"setting": "do_not_disturb", "on": True}), ("set_alarm", {"hour": 6, "minute": 0})])
task("Look up Priya's email and send it to Sam by text",
     has("/messages", {"to": "Sam", "body": "priya@example.com"}),
     [("get_contact", {"name": "Priya", "field": "email"}), ("send_message", {"to": "Sam", "body": "priya@example.com"})])
task("Find a pharmacy on the map and navigate there walking",
     all_of(has("/map_searches", {"query": "pharmacy"}), eq("/navigation/mode", "walking")),
     [("find_place", {"query": "pharmacy"}), ("navigate", {"destination": "pharmacy", "mode": "walking"})])
task("Turn off wifi and turn on airplane mode",
     all_of(eq("/settings/wifi", False), eq("/settings/airplane_mode", True)),
     [("toggle_setting", {"setting": "wifi", "on": False}), ("toggle_setting", {"setting": "airplane_mode", "on": True})])
task("Add Kim to my contacts with phone 555 0111 and then call her",
     all_of(has("/contacts", {"name": "Kim"}), has("/calls", {"contact": "Kim"})),
     [("add_contact", {"name": "Kim", "phone": "555 0111"}), ("call", {"contact": "Kim"})])
task("Delete my 7 am alarm and set a new one at 7:30",
     all_of({"not": has("/alarms", {"hour": 7, "minute": 0})}, has("/alarms", {"hour": 7, "minute": 30})),
     [("delete_alarm", {"hour": 7, "minute": 0}), ("set_alarm", {"hour": 7, "minute": 30})])
task("Create a text document called packing list and take a photo",
     all_of(has("/documents", {"name": "packing list"}), has("/media", {"kind": "photo"})),
     [("create_document", {"name": "packing list", "type": "text"}), ("take_photo", {})])
task("Email Alex subject Photos saying here they are, then turn on bluetooth",
     all_of(has("/emails", {"to": "Alex", "subject": "Photos"}), eq("/settings/bluetooth", True)),
     [("send_email", {"to": "Alex", "subject": "Photos", "body": "here they are"}),
      ("toggle_setting", {"setting": "bluetooth", "on": True})])
task("Search the web for museum hours and add museum visit on saturday at 14:00 to my calendar",
     all_of(has("/web_searches", {"query": "museum hours"}), has("/events", {"title": "museum visit", "date": "saturday"})),
     [("web_search", {"query": "museum hours"}),
      ("create_event", {"title": "museum visit", "date": "saturday", "time": "14:00"})])

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "agent-tasks", "device-tasks.jsonl")
with open(out, "w") as f:
    for t in tasks:
        f.write(json.dumps(t) + "\n")
print(len(tasks), "tasks ->", os.path.normpath(out))
