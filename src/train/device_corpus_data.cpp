// The words of the device-assistant corpus: value pools, phrasings per
// intent, chit-chat. Written for onellm. Index % 4 == 3 is the held-out part
// of every list (see device_corpus_data.h), so keep lists at 8+ entries.
#include "train/device_corpus_data.h"

namespace onellm::device_corpus {

const Pool kContactNames = {
    "Mom", "Dad", "Anna", "Ben", "Carlos", "Dana", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jack", "Kofi",
    "Lena", "Marco", "Nadia", "Oscar", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor", "Wendy",
    "Xavier", "Yara", "Zoe", "Grandma", "Grandpa", "Aunt Lisa", "Uncle Tom", "Dr. Patel", "Coach Miller",
    "Sophie", "Liam", "Mia", "Noah", "Olivia", "Ethan", "Chloe", "Lucas", "Amira", "Jonas", "Keiko", "Pablo",
    "Sara Jones", "Mark Chen", "Julia Weber", "Omar Haddad", "Nina Petrova", "Leo Rossi", "Fatima", "Diego",
    "Hannah", "Ivan", "Maya", "Theo", "Lily", "Ravi"};

const Pool kMessageBodies = {
    "I'm running late", "see you at six", "can you pick up some milk", "call me when you can",
    "I'll be home in ten minutes", "happy birthday!", "where are you?", "the meeting moved to three",
    "thanks for dinner", "don't forget the tickets", "I'm outside", "running ten minutes behind",
    "are we still on for lunch?", "good luck today", "I left my keys at your place", "let's meet at the station",
    "dinner is ready", "can we talk later?", "I got the job!", "bring an umbrella", "on my way",
    "the kids are asleep", "what time is the game?", "I miss you", "the package arrived",
    "please send me the photos", "I'll call you back", "traffic is terrible", "meet me at the entrance",
    "feel better soon", "did you feed the cat?", "the train is delayed"};

const Pool kEmailSubjects = {
    "Meeting notes", "Invoice for March", "Weekend plans", "Project update", "Quick question", "Trip itinerary",
    "Report draft", "Party invitation", "Budget review", "New schedule", "Thank you", "Job application",
    "Rent reminder", "Book club", "Team lunch", "Holiday photos", "Contract signed", "Doctor's note",
    "Flight details", "Class cancelled"};

const Pool kEmailBodies = {
    "Please find the notes attached.", "Can we move the call to Friday?", "Thanks for your help this week.",
    "Let me know what you think.", "The draft is ready for review.", "See you on Saturday.",
    "I will be out of office tomorrow.", "Here is the updated schedule.", "Could you send me the file?",
    "Looking forward to it.", "Everything is confirmed.", "Sorry for the late reply.",
    "The payment went through.", "Let's discuss this on Monday.", "I have attached the photos.",
    "Please confirm by tonight."};

const Pool kSearchQueries = {
    "how tall is mount everest", "best pizza recipe", "weather this weekend", "who won the world cup in 2010",
    "how to tie a tie", "symptoms of the flu", "translate thank you to japanese", "population of canada",
    "how long to boil an egg", "football scores", "news about the election", "how to change a tire",
    "distance from earth to the moon", "easy vegan dinner ideas", "when does the museum open",
    "how many ounces in a cup", "cheap flights to rome", "what is photosynthesis", "bus schedule line 12",
    "how to reset a router", "movie times tonight", "how old is the eiffel tower", "exchange rate euro to dollar",
    "how to make cold brew coffee", "what is the capital of australia", "tips for better sleep",
    "stock price of apple", "how to grow tomatoes", "lyrics of yesterday by the beatles", "marathon training plan",
    "when is the next full moon", "how do vaccines work"};

const Pool kPlaces = {
    "coffee shops nearby", "the nearest gas station", "Central Park", "a pharmacy", "Italian restaurants",
    "the closest ATM", "the train station", "a hardware store", "supermarkets open now", "the city library",
    "a parking garage", "sushi near me", "the post office", "a hospital", "bike shops", "the bus depot",
    "a laundromat", "the zoo", "vegetarian restaurants", "an electric car charger", "the nearest bakery",
    "a dentist", "the science museum", "a gym nearby"};

const Pool kDestinations = {
    "home", "work", "the airport", "Union Station", "Mom's house", "the office", "the beach", "the stadium",
    "downtown", "the hospital", "Lincoln High School", "the mall", "Golden Gate Park", "Terminal 2",
    "the hotel", "Main Street", "the harbor", "the university", "the concert hall", "Pine Street 12",
    "the farmers market", "the ferry terminal", "my dentist", "the city center"};

const Pool kEventTitles = {
    "Dentist appointment", "Team meeting", "Lunch with Sarah", "Yoga class", "Parent teacher conference",
    "Car service", "Dinner with the Hendersons", "Project deadline", "Haircut", "Book club", "Flight to Berlin",
    "Doctor's appointment", "Job interview", "Soccer practice", "Birthday party", "Piano lesson",
    "Coffee with Jack", "Quarterly review", "Movie night", "Vet appointment", "Guitar lesson", "Board meeting",
    "Date night", "Gym session"};

const Pool kEventLocations = {
    "the office", "Room 4B", "the cafe on Main Street", "City Hall", "the community center", "Dr. Lee's clinic",
    "the school", "Grandma's house", "the park", "Conference Room A", "the library", "the town hall"};

const Pool kAlarmLabels = {
    "wake up", "gym", "take medicine", "meeting", "school run", "call the bank", "water the plants", "flight",
    "pick up the kids", "standup", "walk the dog", "leave for work", "lunch", "yoga", "bedtime", "study"};

const Pool kTimerLabels = {
    "pasta", "eggs", "laundry", "pizza", "tea", "nap", "workout", "rice", "parking", "cookies", "homework",
    "meditation", "bread", "break", "plank", "oven"};

const Pool kDocumentNames = {
    "shopping list", "budget 2024", "meeting notes", "travel plan", "resume", "recipe ideas", "book report",
    "invoice 42", "wedding guest list", "project proposal", "reading list", "tax return", "lecture notes",
    "packing list", "garden plan", "monthly report"};

const Pool kDates = {
    "today", "tomorrow", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    "next monday", "next friday", "june 3", "march 14", "august 21", "december 5", "january 30", "may 9",
    "october 17", "the day after tomorrow", "next tuesday", "april 2", "september 12", "july 28",
    "november 11"};

const Pool kEmailAddresses = {
    "anna@example.com", "ben.k@mail.com", "carlos@work.org", "dana.s@example.net", "elena@uni.edu",
    "farid@shop.com", "grace.h@example.com", "hiro@studio.jp", "ines@example.org", "jack.m@mail.com",
    "kofi@company.com", "lena.w@example.de"};

const Pool kAlarmPhrasings = {
    "set an alarm for {time}", "wake me up at {time}", "alarm at {time}", "can you set an alarm for {time}",
    "set an alarm at {time} for {label}", "I need an alarm at {time}", "please wake me at {time}",
    "set a {label} alarm for {time}", "create an alarm for {time} called {label}", "alarm {time}",
    "I want to get up at {time}", "remind me at {time} with an alarm", "put an alarm on {time}",
    "new alarm {time} labeled {label}", "make an alarm for {time}", "get me up at {time}",
    "alarm for {time} please", "wake me at {time} for {label}", "I have to be up by {time}", "could you set my alarm to {time}", "set my alarm for {time}", "an alarm at {time} to {label}", "need to wake up at {time}", "schedule an alarm at {time}",
    // Session 21: the verbs people use; each 4th is held out.
    "alarm me at {time}", "I'd like an alarm at {time}", "add an alarm at {time} labeled {label}", "please set an alarm at {time}"};

const Pool kTimerPhrasings = {
    "set a timer for {duration}", "start a {duration} timer", "timer for {duration}", "count down {duration}",
    "set a {label} timer for {duration}", "timer {duration} for the {label}", "I need a timer for {duration}",
    "start a timer: {duration}", "can you time {duration} for me", "{duration} timer please",
    "start counting down {duration} for {label}", "give me a {duration} timer", "put a timer on for {duration}",
    "time my {label}, {duration}", "begin a {duration} countdown", "set the timer to {duration}",
    "{duration} on the clock", "time {duration} for {label}", "a timer of {duration}", "let me know in {duration}", "countdown {duration}", "make a timer for {duration}", "{label} timer, {duration}", "remind me in {duration}",
    // Session 21: the verbs people use; each 4th is held out.
    "ping me in {duration}", "alert me in {duration}", "let me know when {duration} is up", "buzz me in {duration}", "notify me in {duration}", "tell me in {duration}", "a {label} timer for {duration}", "wake me in {duration}"};

const Pool kShowAlarmsPhrasings = {
    "show my alarms", "what alarms do I have", "list my alarms", "which alarms are set",
    "open my alarms", "do I have any alarms set", "show me the alarm list", "check my alarms",
    "what alarms are on", "are there alarms tomorrow", "display my alarms", "when is my next alarm"};

const Pool kEventPhrasings = {
    "add {title} to my calendar on {date} at {time}", "schedule {title} for {date} at {time}",
    "put {title} on {date} at {time}", "create an event {title} {date} at {time}",
    "I have {title} {date} at {time}", "calendar: {title}, {date}, {time}", "book {title} on {date} at {time}",
    "new event {title} on {date} at {time}", "remind me of {title} {date} at {time} in my calendar",
    "add an event called {title} for {date} at {time}", "can you schedule {title} {date} {time}",
    "make a calendar entry for {title} on {date} at {time}",
    "put {title} in the calendar for {date} at {time}", "{title} on {date} at {time}, add it", "save {title} {date} at {time}", "I need {title} in my calendar {date} {time}", "add {title} {date} {time}", "block {date} at {time} for {title}", "log {title} on {date} at {time}", "set up {title} for {date} at {time}",
    // Session 21: the verbs people use; each 4th is held out.
    "set up {title} on {date} at {time}", "create an event called {title} on {date} at {time}", "make an event {title} for {date} at {time}", "arrange {title} on {date} at {time}", "add {title} to the calendar {date} at {time}", "put {title} in my calendar {date} at {time}", "schedule {title} on {date} {time}", "pencil in {title} for {date} at {time}"};

const Pool kEventAtPlacePhrasings = {
    "add {title} at {location} on {date} at {time}", "schedule {title} at {location} for {date} at {time}",
    "put {title} in my calendar for {date} at {time} at {location}",
    "create an event {title} at {location} {date} {time}",
    "I have {title} at {location} {date} at {time}", "new event: {title}, {location}, {date} at {time}",
    "book {title} at {location} on {date} at {time}", "calendar {title} {date} {time} location {location}",
    "add {title} on {date} at {time} at {location}", "put {title} at {location} on my calendar, {date} {time}", "schedule {title} {date} {time} at {location}", "{title} at {location}, {date} at {time}"};

const Pool kAddContactPhrasings = {
    "add {name} to my contacts with number {phone}", "save {phone} as {name}", "new contact {name} {phone}",
    "create a contact for {name}, phone {phone}", "store {name}'s number: {phone}",
    "add a contact named {name} with the number {phone}", "save {name}, {phone}", "put {name} in my contacts, {phone}",
    "add {name} with email {email}", "save {name}'s email {email}", "new contact {name}, email {email}",
    "create contact {name} email {email}",
    "add contact {name} number {phone}", "save the number {phone} for {name}", "make a new contact {name} with {phone}", "{name}'s number is {phone}, save it", "add {name}'s email {email}", "save contact {name} with email {email}", "{name}'s email is {email}, add it", "store the email {email} for {name}",
    // Session 21: the verbs people use; each 4th is held out.
    "add {name} to my contacts, {phone}", "put {phone} in my contacts as {name}", "save {name} to my contacts with email {email}", "add {name}'s number {phone} to my contacts", "remember {name}'s number: {phone}", "add {name} to contacts with email {email}", "keep {name}'s email {email}", "note {name}'s number {phone}"};

const Pool kGetContactPhrasings = {
    "what's {name}'s {field}", "look up {name}'s {field}", "find the {field} of {name}", "get {name}'s {field}",
    "tell me {name}'s {field}", "what is the {field} for {name}", "show me {name}'s {field}",
    "do I have {name}'s {field}",
    "I need {name}'s {field}", "give me the {field} of {name}", "what {field} does {name} have", "check {name}'s {field}", "pull up {name}'s {field}", "read me {name}'s {field}", "search contacts for {name}'s {field}", "which {field} is {name}'s",
    // Session 21: the verbs people use; each 4th is held out.
    "what's the {field} of {name}", "can you get {name}'s {field}", "tell me the {field} for {name}", "find {name}'s {field}"};

const Pool kCallPhrasings = {
    "call {contact}", "phone {contact}", "ring {contact}", "give {contact} a call", "dial {contact}",
    "can you call {contact}", "please call {contact}", "start a call with {contact}", "call {contact} now",
    "I want to call {contact}", "get {contact} on the phone", "make a call to {contact}",
    "call up {contact}", "I need to call {contact}", "place a call to {contact}", "phone call to {contact}", "could you ring {contact}", "connect me with {contact}", "call {contact} please", "ring up {contact}",
    // Session 21: the verbs people use; each 4th is held out.
    "call {contact} for me", "can you phone {contact}", "give {contact} a ring", "buzz {contact}"};

const Pool kMessagePhrasings = {
    "text {to} {body}", "send {to} a message saying {body}", "message {to}: {body}", "tell {to} {body}",
    "send a text to {to} that says {body}", "sms {to} {body}", "write to {to}: {body}",
    "let {to} know {body}", "send {to} a text: {body}", "text {to} saying {body}",
    "can you text {to} {body}", "drop {to} a message: {body}", "message {to} that {body}",
    "shoot {to} a text, {body}", "send a message to {to}: {body}", "reply to {to} with {body}",
    "send {to} the message {body}", "text to {to}: {body}", "a message for {to}: {body}", "tell {to} that {body}", "please text {to} {body}", "send a text to {to} saying {body}", "notify {to}: {body}", "write {to} a message saying {body}",
    // Session 21: the verbs people use; each 4th is held out.
    "tell {to} I said {body}", "could you tell {to} {body}", "let {to} know that {body}", "ping {to}: {body}", "reply to {to}: {body}", "drop a message to {to}: {body}", "tell {to} by text: {body}", "text a message to {to}: {body}"};

const Pool kEmailPhrasings = {
    "email {to} about {subject}: {body}", "send an email to {to} with subject {subject} saying {body}",
    "write an email to {to}, subject {subject}, {body}", "mail {to} subject {subject} body {body}",
    "compose an email to {to} titled {subject}: {body}", "send {to} an email, {subject}, {body}",
    "email {to} with the subject {subject} and say {body}", "new email to {to} re {subject}: {body}",
    "send an email to {to}, subject {subject}: {body}", "email {to}, subject {subject}, body {body}", "write {to} an email about {subject} saying {body}", "new email for {to} about {subject}: {body}", "mail {to} about {subject}: {body}", "email to {to} subject {subject} text {body}", "send {to} an email titled {subject}: {body}", "compose mail to {to} about {subject}, {body}",
    // Session 21: the verbs people use; each 4th is held out.
    "send an email to {to} about {subject}: {body}", "email {to}: subject {subject}, {body}", "drop {to} an email about {subject}: {body}", "shoot {to} an email re {subject}: {body}"};

const Pool kSearchPhrasings = {
    "search for {query}", "look up {query}", "google {query}", "search the web for {query}", "find {query} online",
    "can you search {query}", "I want to know {query}", "web search {query}", "what does the internet say about {query}",
    "please look up {query}", "search {query}", "find out {query}", "browse for {query}", "check online {query}",
    "do a search on {query}", "look online for {query}",
    "search online for {query}", "look up on the web {query}", "can you look up {query}", "search the internet for {query}", "find information on {query}", "I'd like to know {query}", "google search {query}", "run a search for {query}",
    // Session 21: the verbs people use; each 4th is held out.
    "find out about {query}", "look into {query}", "research {query}", "I wonder {query}", "can you find out {query}", "check the web for {query}", "what does google say about {query}", "get me results for {query}"};

const Pool kFindPlacePhrasings = {
    "find {query}", "where is {query}", "show {query} on the map", "search the map for {query}",
    "are there {query} around here", "locate {query}", "map {query}", "look for {query} on the map",
    "find me {query}", "where can I find {query}", "show me {query}", "any {query} close by",
    "find {query} on the map", "show me {query} nearby", "search nearby for {query}", "map search {query}", "look up {query} on maps", "search maps for {query}", "I need {query}", "is there {query} near me",
    // Session 21: the verbs people use; each 4th is held out.
    "where's {query}", "show me {query} on the map", "is there {query} around", "I'm looking for {query}"};

const Pool kNavigatePhrasings = {
    "navigate to {destination}", "take me to {destination}", "directions to {destination}",
    "how do I get to {destination}", "drive to {destination}", "start navigation to {destination}",
    "route to {destination}", "get me to {destination}", "{mode_verb} to {destination}",
    "directions to {destination} by {mode}", "show me the way to {destination}",
    "navigate {destination} by {mode}", "guide me to {destination}", "let's go to {destination}",
    "how do I get to {destination} by {mode}", "plan a route to {destination}",
    "navigation to {destination}", "bring me to {destination}", "go to {destination}", "route me to {destination} by {mode}", "directions to {destination} please", "get directions to {destination}", "head to {destination}", "I want to {mode_verb} to {destination}",
    // Session 21: the verbs people use; each 4th is held out.
    "get me directions to {destination}", "I need to get to {destination}", "show me how to get to {destination}", "lead me to {destination}"};

const Pool kSettingOnPhrasings = {
    "turn on {setting}", "enable {setting}", "switch on {setting}", "{setting} on", "activate {setting}",
    "please turn {setting} on", "can you enable {setting}", "put {setting} on", "I need {setting} on",
    "switch {setting} on", "start {setting}", "get {setting} going",
    "turn {setting} on please", "enable {setting} now", "{setting} on please", "could you turn on {setting}", "I want {setting} on", "flip {setting} on", "activate {setting} please", "switch {setting} on now",
    // Session 21: the verbs people use; each 4th is held out.
    "turn {setting} on for me", "fire up {setting}", "power on {setting}", "let's have {setting} on"};

const Pool kSettingOffPhrasings = {
    "turn off {setting}", "disable {setting}", "switch off {setting}", "{setting} off", "deactivate {setting}",
    "please turn {setting} off", "can you disable {setting}", "kill {setting}", "I don't need {setting}",
    "switch {setting} off", "stop {setting}", "shut off {setting}",
    "turn {setting} off please", "disable {setting} now", "{setting} off please", "could you turn off {setting}", "I want {setting} off", "flip {setting} off", "deactivate {setting} please", "switch {setting} off now",
    // Session 21: the verbs people use; each 4th is held out.
    "shut {setting} off", "kill {setting} please", "power off {setting}", "get rid of {setting}"};

const Pool kTwoSettingsPhrasings = {
    "turn {state} {setting} and {setting2}", "switch {state} {setting} and {setting2}",
    "{setting} and {setting2} {state}", "please turn {state} both {setting} and {setting2}",
    "put {setting} and {setting2} {state}", "I want {setting} and {setting2} {state}",
    "set {setting} and {setting2} to {state}", "turn {setting} and {setting2} {state}",
    "{state} with {setting} and {setting2}", "both {setting} and {setting2} {state}", "could you turn {state} {setting} and {setting2}", "switch {setting} and {setting2} {state}"};

const Pool kOpenSettingsPhrasings = {
    "open {page} settings", "go to the {page} settings", "show {page} settings", "settings for {page}",
    "take me to {page} in settings", "open the {page} page in settings", "I want to change {page} settings",
    "open settings, {page}",
    "show me the {page} settings", "open settings for {page}", "{page} settings please", "go to {page} settings",
    // Session 21: the verbs people use; each 4th is held out.
    "open the {page} settings", "settings {page}", "bring up {page} settings", "I need the {page} settings"};

const Pool kPhotoPhrasings = {
    "take a photo", "take a picture", "open the camera", "snap a picture", "I want to take a photo",
    "camera please", "take a pic", "capture a photo", "photo time", "let me take a picture", "shoot a photo",
    "grab a picture of this",
    "take a photo now", "snap a photo", "picture please", "capture a picture",
    // Session 21: the verbs people use; each 4th is held out.
    "capture this", "grab a photo", "take a shot", "get a picture of this"};

const Pool kSelfiePhrasings = {
    "take a selfie", "open the front camera", "selfie time", "I want a selfie", "front camera photo",
    "snap a selfie", "take a picture of me", "selfie please",
    "front camera selfie", "take a selfie please", "selfie with the front camera", "switch to the front camera",
    // Session 21: the verbs people use; each 4th is held out.
    "take a selfie now", "capture a selfie", "selfie mode", "photo of me with the front camera"};

const Pool kVideoPhrasings = {
    "record a video", "start recording video", "take a video", "film this", "open the video camera",
    "I want to record a video", "start a video", "capture a video", "record a selfie video",
    "video with the front camera", "shoot a video", "start filming",
    "record video", "video please", "film a video", "start the video camera",
    // Session 21: the verbs people use; each 4th is held out.
    "film a clip", "capture video", "start shooting a video", "make a video"};

const Pool kCreateDocumentPhrasings = {
    "create a {type} called {name}", "new {type} named {name}", "make a {type} document {name}",
    "start a new {type}: {name}", "create a document {name} as {type}", "open a blank {type} called {name}",
    "I need a new {type} named {name}", "make a new {type} for {name}",
    "create a new {type} named {name}", "new {type}: {name}", "make {name} as a {type}", "start a {type} called {name}", "I want a {type} called {name}", "set up a {type} named {name}", "write a new {type}, {name}", "create {name}, a {type}"};

const Pool kOpenDocumentPhrasings = {
    "open {name}", "open my {name}", "find the document {name}", "show me the {name} file",
    "open the {name} document", "where is my {name}", "pull up {name}", "open the file called {name}",
    "open the {name} file", "show {name}", "open document {name}", "bring up {name}", "show me my {name}", "open up {name}", "load {name}", "display the document {name}",
    // Session 21: the verbs people use; each 4th is held out.
    "bring up my {name}", "pull up the {name} file", "bring up the document {name}", "get me the {name} document"};

const Pool kRepeatPhrasings = {
    "repeat after me: {text}", "say {text}", "echo {text}", "can you repeat this: {text}", "say this back: {text}",
    "type exactly: {text}", "write out {text}", "please repeat {text}", "repeat {text}", "just say {text}",
    "copy this: {text}", "say the words {text}"};

const Pool kDeleteAlarmPhrasings = {
    "delete my {time} alarm", "remove the alarm at {time}", "cancel the {time} alarm", "turn off my alarm for {time}",
    "get rid of the {time} alarm", "delete the alarm for {time}", "I don't need the {time} alarm anymore",
    "clear the alarm at {time}", "remove my {time} alarm", "no more alarm at {time}", "cancel my alarm at {time}",
    "delete alarm {time}", "drop the {time} alarm", "take away my alarm at {time}", "erase the {time} alarm",
    "kill the alarm for {time}",
    // Session 21: the verbs people use; each 4th is held out.
    "kill my {time} alarm", "switch off the {time} alarm", "shut off the alarm at {time}", "I don't want the {time} alarm"};

const Pool kCancelTimerPhrasings = {
    "cancel the timer", "stop the timer", "stop my timer", "cancel my timers", "kill the timer",
    "turn off the timer", "stop all timers", "cancel all my timers", "end the timer", "never mind the timer",
    "clear the timers", "remove the timer", "stop the countdown", "cancel the countdown", "timer off",
    "delete my timers"};

const Pool kCancelLabelledTimerPhrasings = {
    "cancel the {label} timer", "stop the {label} timer", "cancel my timer for {label}", "stop the timer for {label}",
    "turn off the {label} timer", "end the {label} timer", "kill the {label} timer",
    "remove the timer called {label}", "cancel timer {label}", "stop timing {label}", "clear the {label} timer",
    "never mind the {label} timer", "delete the {label} timer", "cancel the timer named {label}",
    "stop my {label} countdown", "end my timer for {label}"};

const Pool kListEventsPhrasings = {
    "what's on my calendar", "show my calendar", "list my events", "what events do I have", "open my calendar",
    "show me my schedule", "what's on my schedule", "do I have any meetings", "check my calendar",
    "what have I got planned", "list my appointments", "show upcoming events", "what's coming up",
    "read me my calendar", "any events coming up", "what's in my agenda"};

const Pool kListEventsOnDatePhrasings = {
    "what's on my calendar {date}", "show my events for {date}", "what do I have on {date}",
    "list my events on {date}", "am I busy {date}", "what's my schedule for {date}", "check my calendar for {date}",
    "any meetings on {date}", "what's planned for {date}", "show me {date} on the calendar",
    "do I have anything {date}", "open the calendar for {date}", "events on {date}", "what's happening {date}",
    "read me my schedule for {date}", "list appointments for {date}"};

const Pool kDeleteEventPhrasings = {
    "delete {title} from my calendar", "cancel {title}", "remove the event {title}", "delete the {title} event",
    "take {title} off my calendar", "cancel my {title}", "drop {title} from the calendar",
    "remove {title} from my schedule", "clear {title} from my calendar", "delete event {title}", "call off {title}",
    "erase {title} from the calendar", "I'm skipping {title}, delete it", "scrap the {title} event",
    "get {title} off my schedule", "unschedule {title}"};

const Pool kDeleteContactPhrasings = {
    "delete {name} from my contacts", "remove the contact {name}", "delete contact {name}",
    "remove {name} from my phone", "erase {name} from contacts", "forget the contact {name}",
    "delete {name}'s contact", "take {name} out of my contacts", "remove {name} from my address book",
    "get rid of the contact {name}", "delete the contact named {name}", "drop {name} from my contacts",
    "I don't need {name} in my contacts anymore", "wipe {name} from my contacts", "delete {name} from the phone book",
    "remove contact {name}"};

const Pool kDeleteDocumentPhrasings = {
    "delete the document {name}", "delete my {name} file", "remove the {name} document", "trash {name}",
    "delete the file called {name}", "get rid of the {name} file", "erase the document {name}",
    "throw away the {name} file", "remove the file {name}", "delete document {name}", "bin the {name} document",
    "delete my document {name}", "send {name} to the trash", "remove my {name} file", "discard the document {name}",
    "wipe the {name} file"};

const Pool kBrightnessPhrasings = {
    "set brightness to {level}%", "brightness {level} percent", "make the screen {level}% bright",
    "turn the brightness to {level}", "screen brightness at {level} percent", "change brightness to {level}%",
    "dim the screen to {level}%", "set the display brightness to {level}", "brightness to {level}",
    "put the brightness at {level} percent", "adjust brightness to {level}%", "I want {level}% brightness",
    "screen at {level} percent brightness", "brightness level {level}", "make it {level}% brightness",
    "set the screen to {level} percent"};

const Pool kVolumePhrasings = {
    "set the volume to {level}%", "volume {level}", "turn the volume to {level} percent", "volume at {level}%",
    "change the volume to {level}", "make it {level}% loud", "put the volume on {level}", "volume {level} percent",
    "adjust the volume to {level}%", "I want the volume at {level}", "set volume {level}",
    "turn it to {level} percent volume", "sound at {level}%", "make the volume {level}", "volume level {level}",
    "set the sound to {level} percent"};

const Pool kStreamVolumePhrasings = {
    "set the {stream} volume to {level}%", "{stream} volume {level} percent", "turn the {stream} volume to {level}",
    "change the {stream} volume to {level}%", "make the {stream} volume {level}", "put {stream} volume at {level}",
    "{stream} volume to {level}", "adjust the {stream} volume to {level} percent", "set {stream} volume {level}%",
    "I want the {stream} volume at {level}", "{stream} at {level} percent", "turn {stream} volume to {level}%",
    "set my {stream} volume to {level}", "{stream} volume level {level}", "make {stream} volume {level}%",
    "the {stream} volume should be {level}"};

// What joins two requests in one sentence (two_requests in device_corpus.cpp).
const Pool kJoinWords = {" and ", ", then ", " and then ", ", and also ", ", also ", " then ", " and after that ",
                         ", plus "};

const std::vector<ChitChat> kChitChat = {
    {{"hi", "hello", "hey there", "good morning", "hey", "hi there", "good evening", "hello assistant",
      "hiya", "yo", "good afternoon", "morning"},
     {"Hello! How can I help?", "Hi! What can I do for you?", "Hey! What do you need?"}},
    {{"thanks", "thank you", "thanks a lot", "great, thanks", "cheers", "much appreciated", "thank you so much",
      "perfect, thanks",
      "thanks so much", "awesome, thank you", "ok thanks", "thx"},
     {"You're welcome!", "Happy to help.", "Anytime."}},
    {{"what can you do", "help", "what are you able to do", "how can you help me", "what can I ask you",
      "what do you do", "show me what you can do", "what are your features",
      "what can you help with", "what are you good for", "list your features", "what do you know how to do"},
     {"I can set and delete alarms and timers, manage your calendar and contacts, call or message people, send "
      "email, search the web and maps, change settings, brightness and volume, use the camera and manage "
      "documents."}},
    {{"who are you", "what's your name", "what are you", "are you a robot", "introduce yourself",
      "tell me about yourself", "who am I talking to", "are you human",
      "are you a person", "what should I call you", "is this a bot", "what kind of assistant are you"},
     {"I'm onellm, the assistant on this device. I run entirely on the phone.",
      "I'm onellm, a small assistant that runs on this device."}},
    {{"bye", "goodbye", "see you", "good night", "that's all", "bye bye", "see you later", "nothing else",
      "goodbye for now", "talk later", "I'm done", "that's it for now"},
     {"Goodbye!", "See you later!", "Bye! Have a good one."}},
    {{"order a pizza", "book me a flight", "transfer money to Ben", "buy me shoes", "pay my rent",
      "order groceries", "book a hotel", "call an uber",
      "order me a taxi", "buy concert tickets", "pay the electricity bill", "order me a coffee"},
     {"Sorry, I can't do that on this device yet.", "I can't do that yet, but I can search the web for it."}},
    {{"how are you", "how's it going", "are you ok", "how are you doing", "how do you feel", "what's up",
      "how is your day", "you good?",
      "how have you been", "everything ok?", "how are things", "how's your day going"},
     {"I'm doing well, thanks! How can I help?", "All good here. What do you need?"}},
    {{"tell me a joke", "say something funny", "make me laugh", "know any jokes", "joke please",
      "got a joke for me", "cheer me up", "tell me something funny",
      "tell me a funny story", "tell me another joke", "do you know a good joke", "say something to make me smile"},
     {"Why did the phone wear glasses? It lost its contacts.",
      "I would tell you a UDP joke, but you might not get it."}},
};

const Pool kSystemPrompts = {
    "You are onellm, the assistant on this phone. Use the tools to act on the device; keep answers short.",
    "You are a helpful on-device assistant.",
    "You control this phone through tools. Answer briefly.",
    "You are the phone's assistant.",
    // Session 21: a model that saw only the 3 above took an unseen system prompt for part of the request
    // (docs/training.md, "Session 21"); many, each 4th held out, teach it to read past them.
    "You are an assistant running on this device. Call a tool when the user asks for an action.",
    "Help the user with their phone. Be brief.", "You are a voice assistant in a smartphone.",
    "You are a friendly assistant on a mobile phone. Use tools to carry out requests.",
    "Act for the user on this phone using the available functions. Keep replies to one sentence.",
    "You are onellm. You can use the device's tools.", "You are a concise assistant for a phone user.",
    "You run on the user's phone and can control alarms, messages, calendar, settings and more.",
    "Assist the user. When a request needs the device, call the matching function.",
    "You are a helpful, brief assistant built into this handset.",
    "You are the device assistant. Do what the user asks with the tools, then confirm in a few words.",
    "Be a helpful phone assistant."};

}  // namespace onellm::device_corpus
