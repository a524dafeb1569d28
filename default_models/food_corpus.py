"""Synthetic Hinglish/English food-ordering NER corpus for the built-in default BERT-CRF model.

Everything is generated from a seed, so the corpus is reproducible without shipping data.

Three splits, each with its own templates and entity values, pairwise disjoint:

- "test" holds out a quarter of TEMPLATES and of each label's VALUES. It depends on nothing else,
  so adding training material (EXTRA_TEMPLATES, the compositional values) never moves it.
- "dev" holds out a third of what remains of TEMPLATES and VALUES, built the same way as test (the
  hand-written lists only), so it measures the same generalisation to unseen restaurants, dishes
  and phrasings and is a fair model-selection signal that never touches test.
- "train" gets the rest of TEMPLATES and VALUES plus EXTRA_TEMPLATES and compositional values
  built from word lists; no compositional value contains a dev or test value as a whole-word
  phrase.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

LABELS: tuple[str, ...] = ("STORE", "FOOD", "LOC", "QTY", "PREF")

# Values are lower-case and unique across all labels; the surface case is varied at render time.
# fmt: off
VALUES: Mapping[str, tuple[str, ...]] = {
    "STORE": (
        "tushar", "inayat cafe", "sharma sweets", "haldiram's", "café coffee day", "bikanervala",
        "domino's", "burger king", "mcdonald's", "kfc", "subway", "behrouz biryani",
        "paradise biryani", "saravana bhavan", "sagar ratna", "anand sweets", "chitale bandhu",
        "vaishali", "goodluck cafe", "bademiya", "britannia and co", "leopold cafe", "theobroma",
        "keventers", "chaayos", "faasos", "oven story", "la pino'z", "karim's", "moti mahal",
        "gulati", "punjab grill", "shiv sagar", "guru kripa", "mama's kitchen", "joshi wadewale",
        "kayani bakery", "gopal sweets", "bombay canteen", "agarwal bhojnalaya",
        "mehta's snack corner", "annapurna mess", "hotel sai palace", "sukh sagar", "zaffran",
    ),
    "FOOD": (
        "misal", "pizza", "paneer tikka", "masala dosa", "chole bhature", "vada pav", "pav bhaji",
        "biryani", "chicken biryani", "butter chicken", "dal makhani", "naan", "garlic naan",
        "rajma chawal", "idli", "sambar vada", "poha", "upma", "samosa", "kachori", "jalebi",
        "gulab jamun", "rasmalai", "kaju katli", "momos", "hakka noodles", "manchurian",
        "fried rice", "burger", "french fries", "cold coffee", "masala chai", "mango lassi",
        "thali", "aloo paratha", "paneer butter masala", "kadhai paneer", "tandoori roti",
        "shawarma", "chicken 65", "fish curry", "egg bhurji", "dhokla", "pani puri", "sev puri",
        "bhel puri", "crème brûlée", "café latte",
    ),
    "LOC": (
        "andheri west", "sector 15", "mg road", "koramangala 5th block", "bandra", "powai",
        "indiranagar", "connaught place", "salt lake", "baner", "kothrud", "viman nagar",
        "hinjewadi phase 1", "dlf phase 3", "cyber city", "hsr layout", "whitefield", "juhu",
        "malad east", "thane west", "vashi", "lajpat nagar", "karol bagh", "saket",
        "dwarka sector 10", "gachibowli", "banjara hills", "jubilee hills", "t nagar",
        "anna nagar", "adyar", "park street", "new town", "aundh", "wakad", "goregaon east",
        "borivali west", "colaba", "vile parle", "civil lines", "gomti nagar", "hazratganj",
        "navrangpura", "sector 62 noida",
    ),
    "QTY": (
        "1", "2", "3", "4", "5", "6", "8", "10", "12", "ek", "do", "teen", "char", "paanch",
        "one", "two", "three", "four", "five", "a dozen", "half dozen", "3 plate", "ek plate",
        "do plate", "2 plates", "half plate", "full plate", "half kg", "1 kg", "250 gram",
        "500 gm", "aadha kilo", "ek kilo", "4 pieces", "6 pcs", "ek packet", "2 packets",
        "3 bowls", "do glass",
    ),
    "PREF": (
        "extra spicy", "kam teekha", "without onion", "jain", "no cheese", "less oil",
        "bina pyaaz", "bina lehsun", "extra cheese", "no garlic", "mild", "medium spicy",
        "zyada teekha", "kam tel", "less sugar", "no sugar", "bina cheeni", "sugar free",
        "extra butter", "well done", "no mayo", "gluten free", "vegan", "double cheese",
        "thin crust", "extra chutney", "no coriander", "bina dhaniya", "less salt", "kam namak",
        "extra gravy", "half fry", "no ice", "kam meetha", "without tomato", "no mushrooms",
    ),
}
# fmt: on

# Placeholders are {LABEL}; at most four entities per template, some templates have none.
TEMPLATES: tuple[str, ...] = (
    # Hinglish
    "{STORE} se {QTY} {FOOD} mangwao",
    "{STORE} se {FOOD} chahiye",
    "{QTY} {FOOD} bhejo, {PREF}",
    "{STORE} se {QTY} {FOOD} {LOC} bhej do",
    "mujhe {QTY} {FOOD} chahiye {STORE} se",
    "{LOC} pe {QTY} {FOOD} deliver karo",
    "{FOOD} {PREF} banana",
    "kya {STORE} se {FOOD} mil sakta hai",
    "{STORE} ka {FOOD} order karna hai",
    "{QTY} {FOOD} aur {QTY} {FOOD} bhejo",
    "{FOOD} {PREF} chahiye {LOC} mein",
    "bhai {STORE} se {FOOD} mangwa do",
    "{LOC} mein {STORE} deliver karta hai kya",
    "{STORE} ka menu dikhao",
    "{FOOD} kitne ka hai {STORE} mein",
    "please {QTY} {FOOD} {LOC} bhejiye",
    "{QTY} {FOOD} {PREF} wala bhejna",
    "aaj {STORE} se kuch mangwate hain, {QTY} {FOOD}",
    "{FOOD} mein {PREF} karna",
    "mera order {LOC} pe bhejna",
    "{STORE} wale {FOOD} ko {PREF} banana",
    "ek baar {FOOD} {STORE} se try karte hain",
    "{QTY} {FOOD} pack kar do",
    "{LOC} ke paas koi {FOOD} milega",
    "order mein {PREF} likh dena",
    "menu dikhao",
    "mera order kahan hai",
    "order cancel kar do",
    "aaj kya special hai",
    "delivery kitni der mein hogi",
    # English
    "order {QTY} {FOOD} from {STORE} to {LOC}",
    "i want {QTY} {FOOD} from {STORE}",
    "can i get {FOOD} {PREF} from {STORE}",
    "send {QTY} {FOOD} to {LOC}",
    "get me {FOOD} from {STORE}",
    "deliver {QTY} {FOOD} to {LOC}, {PREF}",
    "does {STORE} deliver to {LOC}",
    "i would like {QTY} {FOOD}, {PREF}",
    "please make the {FOOD} {PREF}",
    "show me the menu of {STORE}",
    "is {FOOD} available at {STORE}",
    "add {QTY} {FOOD} to my order",
    "how much is {FOOD} at {STORE}",
    "my address is {LOC}",
    "{QTY} {FOOD} and {QTY} {FOOD} please",
    "could you send {FOOD} from {STORE} to {LOC}",
    "make it {PREF}",
    "from {STORE}, {QTY} {FOOD} to {LOC}",
    "{FOOD} from {STORE}, {PREF}, deliver to {LOC}",
    "what time does {STORE} close",
    "any {PREF} options at {STORE}",
    "i'm at {LOC}, send {QTY} {FOOD}",
    "what are your timings",
    "show me the menu",
    "where is my order",
    "cancel my order",
    "do you have any offers today",
    "thanks a lot",
)

# Training-side additions. They only ever feed the train and dev pools, never the test split, so
# the test benchmark (held out from TEMPLATES and VALUES above) stays fixed however much training
# material is added here.
EXTRA_TEMPLATES: tuple[str, ...] = (
    # Hinglish
    "{STORE} se {FOOD} {QTY} bhej do",
    "{FOOD} {QTY} chahiye, {STORE} se",
    "bhaiya {QTY} {FOOD} {PREF} karke bhejna",
    "{STORE} wala {FOOD} mangwa do {LOC} pe",
    "{LOC} mein rehta hoon, {STORE} se {FOOD} bhejo",
    "yaar {FOOD} khane ka mann hai, {STORE} se mangwao",
    "{QTY} {FOOD} chahiye {PREF}",
    "{FOOD} ka order {LOC} bhejna hai",
    "{STORE} band hai kya abhi",
    "{STORE} ka address kya hai",
    "{LOC} tak delivery hoti hai kya",
    "mera ghar {LOC} mein hai",
    "{FOOD} {PREF} dena, {QTY}",
    "{STORE} ke {FOOD} bahut ache hain, {QTY} bhejo",
    "{FOOD} thoda {PREF} banana",
    "{PREF} rakhna {FOOD} mein",
    "{QTY} {FOOD} {STORE} se le aao",
    "{STORE} se {FOOD} lana hai {LOC} ke liye",
    "jaldi {QTY} {FOOD} bhejo {LOC}",
    "{FOOD} mil jayega kya {LOC} mein",
    "kal wala {FOOD} phir se mangwana hai",
    "{STORE} pe offer chal raha hai kya",
    "abhi {FOOD} order karo {STORE} se",
    "sir {QTY} {FOOD} {PREF} please",
    "{FOOD} ke saath {FOOD} bhi bhej dena",
    "{FOOD} ke saath {PREF} chahiye",
    "ghar pe {QTY} {FOOD} bhej do, address {LOC}",
    "{STORE} ki {FOOD} {LOC} pe milegi",
    "mujhe {STORE} ka {FOOD} khana hai",
    "{FOOD} mein {PREF} aur {PREF} karna",
    "{STORE} se kuch bhi mangwa do",
    "{FOOD}, {FOOD} aur {FOOD} bhi",
    "{LOC} ke {STORE} se {FOOD} mangao",
    "{FOOD} bana do {PREF}, {QTY}",
    "{STORE} ko bolo {FOOD} {PREF} bhejna",
    "hamare {LOC} wale ghar pe {FOOD} bhejo",
    "{FOOD} chahiye tha, {STORE} mein milta hai",
    "{LOC} mein {FOOD} kahan milega",
    "{LOC} ke liye {QTY} {FOOD} bhejo",
    "{LOC} wale address pe {FOOD} bhej do",
    "{LOC} se {LOC} shift ho gaya hoon",
    "{LOC} pe koi {STORE} hai kya",
    "{LOC} mein {PREF} {FOOD} milta hai kya",
    "{QTY} {PREF} {FOOD} bhejo",
    "{FOOD} {QTY} aur {FOOD} {QTY}",
    "address change karo, naya address {LOC}",
    "{STORE} se {QTY} {FOOD} aur {FOOD} lao",
    "order confirm kar do",
    "payment ho gaya kya",
    "bhaiya jaldi bhejo",
    "paise kitne hue",
    "rider kab aayega",
    "haan theek hai",
    "abhi nahi chahiye",
    # English
    "i need {QTY} {FOOD} delivered to {LOC}",
    "{QTY} {FOOD} from {STORE} please",
    "please order {FOOD} from {STORE}",
    "can you get me {QTY} {FOOD}",
    "i'd like to order {FOOD} from {STORE}",
    "an order of {FOOD}, {PREF}",
    "put {QTY} {FOOD} in my cart",
    "add {FOOD} with {PREF}",
    "i want my {FOOD} {PREF}",
    "{FOOD} with {PREF} from {STORE}",
    "order from {STORE} to {LOC}",
    "is {STORE} open now",
    "is there a {STORE} in {LOC}",
    "which restaurants near {LOC} serve {FOOD}",
    "find {FOOD} near {LOC}",
    "show restaurants in {LOC}",
    "best {FOOD} in {LOC}",
    "change my address to {LOC}",
    "ship it to {LOC}",
    "reorder {FOOD} from {STORE}",
    "repeat my last order from {STORE}",
    "how long will {STORE} take",
    "{FOOD} x {QTY}",
    "hey, {QTY} {FOOD} and a {FOOD} please",
    "get {QTY} {FOOD}, {PREF}, from {STORE}",
    "i'll have {QTY} {FOOD}",
    "i'll take the {FOOD}, {PREF}",
    "could i order {QTY} {FOOD} for delivery to {LOC}",
    "need {FOOD} asap at {LOC}",
    "{FOOD} please, {PREF}",
    "remove {FOOD} from my cart",
    "swap the {FOOD} for {FOOD}",
    "does {STORE} have {FOOD}",
    "what does {FOOD} cost at {STORE}",
    "price of {QTY} {FOOD} at {STORE}",
    "is delivery free to {LOC}",
    "rate my order from {STORE}",
    "{STORE} near {LOC}",
    "tell {STORE} to make the {FOOD} {PREF}",
    "note for the restaurant: {PREF}",
    "instructions: {PREF}, {PREF}",
    "keep it {PREF}",
    "{QTY} {FOOD} with {PREF} to {LOC}",
    "we are at {LOC}, need {QTY} {FOOD} from {STORE}",
    "lunch from {STORE}: {QTY} {FOOD}, {PREF}",
    "{STORE}'s {FOOD} is great, order {QTY}",
    "at {LOC}, can i get {FOOD} from {STORE}",
    "{LOC}: {QTY} {FOOD}, {PREF}",
    "{PREF} {FOOD} from {STORE}, {QTY}",
    "for {LOC}, {QTY} {FOOD} please",
    "hi, i am in {LOC}, is {STORE} delivering",
    "pick up {FOOD} from {STORE} and drop at {LOC}",
    "track my order",
    "i want a refund",
    "talk to customer care",
    "good morning",
    "what do you recommend",
    "is there any discount",
)

# Entity-value material, combined into compositional values below.
# fmt: off
_PROTEINS = (
    "paneer", "chicken", "mutton", "veg", "egg", "aloo", "gobi", "mushroom", "corn", "fish",
    "prawn", "soya", "dal", "keema", "chana", "rajma", "palak", "methi", "bhindi", "baingan",
)
_STYLES = (
    "tandoori", "butter", "malai", "kadai", "achari", "chilli", "schezwan", "garlic", "peri peri",
    "hyderabadi", "lucknowi", "amritsari", "mysore", "afghani", "kolhapuri", "chettinad", "goan",
    "punjabi", "jeera", "lemon", "pepper", "hariyali", "shahi", "dum",
)
_DISHES = (
    "roll", "wrap", "sandwich", "curry", "pulao", "kebab", "tikka", "pakora", "paratha", "kulcha",
    "soup", "salad", "pasta", "noodles", "rice", "korma", "kofta", "handi", "bhaji", "chaat",
    "tikki", "frankie", "platter", "fry", "biryani", "dosa", "uttapam", "pizza", "burger",
    "momos", "vada", "puri", "cutlet", "khichdi", "stew", "masala", "do pyaza", "lababdar",
    "bhurji", "lollipop", "seekh kebab", "65", "tikka masala", "fried rice", "manchurian",
)
_SWEET_FLAVOURS = (
    "chocolate", "mango", "strawberry", "kesar", "badam", "pista", "vanilla", "butterscotch",
    "rose", "coconut", "gajar", "moong dal", "oreo", "paan", "kaju", "anjeer",
)
_SWEETS = (
    "shake", "milkshake", "lassi", "kulfi", "ice cream", "halwa", "kheer", "barfi", "ladoo",
    "pastry", "cake", "brownie", "smoothie", "falooda", "sundae", "modak",
)
_OTHER_FOODS = (
    "thukpa", "litti chokha", "dhansak", "undhiyu", "thepla", "khandvi", "pesarattu",
    "bisi bele bath", "nihari", "haleem", "sheermal", "galouti kebab", "kathi roll", "pongal",
    "puttu", "appam", "idiyappam", "misal pav", "sabudana khichdi", "dabeli", "rogan josh",
    "laal maas", "dal baati churma", "bun maska", "irani chai", "filter coffee", "green tea",
    "hot chocolate", "nachos", "garlic bread", "tacos", "spring rolls", "fish and chips",
    "mac and cheese", "pancakes", "waffles", "tiramisu", "cheesecake", "sugarcane juice",
    "nimbu pani", "jaljeera", "mosambi juice", "watermelon juice", "masala soda", "buttermilk",
    "chaas", "kadha", "sol kadhi", "rasgulla", "sandesh", "mysore pak", "petha", "ghevar",
)
_SURNAMES = (
    "sharma", "gupta", "agarwal", "verma", "singh", "khan", "patel", "shah", "iyer", "nair",
    "reddy", "rao", "bose", "das", "mehta", "jain", "kapoor", "malhotra", "chopra", "bhatia",
    "arora", "yadav", "pandey", "mishra", "tiwari", "desai", "kulkarni", "shetty", "pillai",
    "menon", "qureshi", "ansari", "sethi", "bansal", "goel", "mittal", "chawla", "saini",
    "thakur", "rawat",
)
_STORE_KINDS = (
    "dhaba", "sweets", "bhojnalaya", "restaurant", "kitchen", "cafe", "bakery", "caterers",
    "foods", "snacks", "tiffin centre", "mess", "bhavan", "corner", "chaat bhandar",
    "misthan bhandar", "rasoi", "family restaurant", "da dhaba", "food court", "juice centre",
    "biryani house", "tea stall", "dosa corner", "restro", "eatery",
)
_NICKNAMES = (
    "amma", "nani", "papa", "dadi", "raju", "pappu", "bittu", "munna", "rinku", "lucky",
    "sonu", "guddu", "chotu", "bunty", "pinky", "baba", "anna", "chacha", "maasi", "bua",
)
_BRAND_WORDS = (
    "madras", "bombay", "punjab", "delhi", "kolkata", "udupi", "malabar", "awadh", "rajdhani",
    "shree krishna", "ganesh", "om sai", "balaji", "royal", "grand", "green leaf", "blue moon",
    "red chilli", "spice", "urban", "tandoor", "jalsa", "swad", "zaika", "rasoi ghar",
)
_BRAND_FORMS = (
    "hotel {}", "cafe {}", "{} express", "{} house", "{} point", "the {} co", "{} bites",
    "{} grill", "{} junction", "new {}",
)
_AREAS = (
    "kurla", "dadar", "worli", "chembur", "kandivali", "ghatkopar", "mulund", "khar",
    "santacruz", "versova", "hadapsar", "kharadi", "yelahanka", "jayanagar", "marathahalli",
    "madhapur", "kondapur", "secunderabad", "velachery", "mylapore", "howrah", "ballygunge",
    "pitampura", "janakpuri", "indirapuram", "alambagh", "aliganj", "bopal", "maninagar", "sion",
    "matunga", "byculla", "nerul", "kalyani nagar", "deccan", "shivajinagar", "malleshwaram",
    "basavanagudi", "btm layout", "electronic city", "hitech city", "kukatpally", "ameerpet",
    "tambaram", "porur", "behala", "dum dum", "rohini", "vasant kunj", "greater kailash",
    "hauz khas", "mayur vihar", "model town", "green park", "rajouri garden", "preet vihar",
)
_PERSONS = (
    "rajiv", "indira", "gandhi", "nehru", "shastri", "tilak", "shivaji", "ambedkar", "laxmi",
    "shanti", "vasant", "ashok", "subhash", "netaji", "sarojini", "kamla", "krishna", "govind",
    "vikas", "azad",
)
_PLACE_KINDS = (
    "nagar", "colony", "vihar", "enclave", "road", "chowk", "marg", "bagh", "puram", "park",
    "extension", "layout", "society", "market",
)
_ORDINALS = ("1st", "2nd", "3rd", "4th", "6th", "7th", "8th", "9th")
_CITIES = ("noida", "gurgaon", "rohini", "kharghar", "chandigarh", "navi mumbai", "faridabad")
_DIRECTIONS = ("east", "west", "north", "south")
_SYLLABLES = ("ba", "ka", "zo", "chi", "ra", "lo", "mi", "ta", "fa", "so", "nu", "pe", "vi", "yo")
_PLACE_ENDINGS = ("pur", "abad", "gaon", "ganj", "wadi", "pet", "halli", "palli", "garh")
_BRAND_ENDINGS = ("s", "'s", "wala", "ito", "ora", "ville", "ry", "z")
_NUMBERS = (
    *(str(n) for n in (*range(1, 21), 24, 25, 30, 50, 100)),
    "ek", "do", "teen", "char", "paanch", "chhe", "saat", "aath", "nau", "das", "gyarah",
    "barah", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve",
)
_FRACTIONS = ("half", "aadha", "dedh", "dhai", "quarter", "1/2", "1.5")
_UNITS = (
    "plate", "plates", "kg", "kilo", "gram", "grams", "gm", "pieces", "piece", "pcs", "packet",
    "packets", "bowl", "bowls", "glass", "glasses", "box", "boxes", "cup", "cups", "litre", "ml",
    "portion", "portions", "serving", "dozen", "bottle", "bottles", "parcel", "tray", "katori",
)
_PREF_WORDS = (
    "extra", "no", "less", "kam", "bina", "without", "zyada", "more", "light", "double",
)
_INGREDIENTS = (
    "cheese", "onion", "pyaaz", "garlic", "lehsun", "oil", "tel", "ghee", "butter", "makhan",
    "salt", "namak", "sugar", "cheeni", "chilli", "mirchi", "mayo", "sauce", "ketchup", "gravy",
    "chutney", "tomato", "capsicum", "ice", "cream", "spice", "coriander", "dhaniya", "lemon",
    "nimbu", "olives", "jalapenos", "mushrooms", "peanuts", "cashews", "ginger", "adrak",
    "green chilli", "hari mirch", "toppings",
)
_AMOUNT_WORDS = ("kam", "zyada", "nahi", "extra", "thoda")
_PREF_PHRASES = (
    "spicy", "very spicy", "less spicy", "non spicy", "teekha", "bahut teekha", "crispy",
    "extra crispy", "well cooked", "soft", "piping hot", "chilled", "thanda", "garam", "low fat",
    "dairy free", "egg free", "eggless", "keto", "pure veg", "swaminarayan",
    "no onion no garlic", "fully cooked", "medium rare", "lightly fried", "tawa fried",
    "boneless", "with bone", "dry", "semi gravy", "unsweetened", "salted", "jain style",
    "halal", "organic",
)
# fmt: on

# How many compositional values of each kind feed the training side.
_EXTRA_COUNTS: Mapping[str, tuple[tuple[str, int], ...]] = {
    "FOOD": (
        ("dish", 25),
        ("protein dish", 60),
        ("style dish", 45),
        ("full dish", 60),
        ("sweet", 30),
        ("other", 40),
        ("coined dish", 40),
    ),
    "STORE": (
        ("family", 60),
        ("nickname", 25),
        ("brand", 40),
        ("coined brand", 35),
        ("coined family", 20),
    ),
    "LOC": (
        ("area", 40),
        ("direction", 20),
        ("sector", 25),
        ("person place", 45),
        ("block", 20),
        ("coined place", 25),
        ("coined place kind", 20),
    ),
    "QTY": (("number", 30), ("number unit", 120), ("fraction unit", 30)),
    "PREF": (("word ingredient", 70), ("ingredient amount", 35), ("phrase", 30)),
}


def _coined(rng: random.Random, endings: tuple[str, ...]) -> str:
    """A made-up name such as "zochira" or "kamipur": unseen words teach reliance on context."""
    return "".join(rng.choices(_SYLLABLES, k=rng.choice((2, 3)))) + rng.choice(endings)


def _candidates(kind: str, rng: random.Random) -> list[str]:
    """Every value of one compositional kind (coined kinds: a fixed random sample)."""
    if kind == "dish":
        return [d for d in _DISHES if not d.isdigit()]
    if kind == "protein dish":
        return [f"{p} {d}" for p in _PROTEINS for d in _DISHES]
    if kind == "style dish":
        return [f"{s} {d}" for s in _STYLES for d in _DISHES]
    if kind == "full dish":
        return [f"{p} {s} {d}" for p in _PROTEINS for s in _STYLES for d in _DISHES]
    if kind == "sweet":
        return [f"{f} {s}" for f in _SWEET_FLAVOURS for s in _SWEETS]
    if kind == "other":
        return list(_OTHER_FOODS)
    if kind == "family":
        return [f"{n} {k}" for n in _SURNAMES for k in _STORE_KINDS]
    if kind == "nickname":
        forms = ("{}'s kitchen", "{}'s", "{} ka dhaba", "{} di hatti", "{} chai wala")
        return [f.format(n) for n in _NICKNAMES for f in forms]
    if kind == "brand":
        return [f.format(w) for w in _BRAND_WORDS for f in _BRAND_FORMS]
    if kind == "coined brand":
        return sorted({_coined(rng, _BRAND_ENDINGS) for _ in range(400)})
    if kind == "coined place":
        return sorted({_coined(rng, _PLACE_ENDINGS) for _ in range(400)})
    if kind == "coined dish":  # "zokami", "paneer zokami", "zokami curry"
        shapes = ("{}", "{} {}", "{1} {0}")
        return sorted(
            {
                rng.choice(shapes).format(_coined(rng, ("",)), rng.choice(_PROTEINS + _DISHES))
                for _ in range(400)
            }
        )
    if kind == "coined family":
        return sorted({f"{_coined(rng, ('',))} {rng.choice(_STORE_KINDS)}" for _ in range(400)})
    if kind == "coined place kind":
        return sorted({f"{_coined(rng, ('',))} {rng.choice(_PLACE_KINDS)}" for _ in range(400)})
    if kind == "area":
        return list(_AREAS)
    if kind == "direction":
        return [f"{a} {d}" for a in _AREAS if " " not in a for d in _DIRECTIONS]
    if kind == "sector":
        return [f"sector {n}" for n in range(1, 100)] + [
            f"sector {n} {c}" for n in range(1, 100) for c in _CITIES
        ]
    if kind == "person place":
        return [f"{p} {k}" for p in _PERSONS for k in _PLACE_KINDS]
    if kind == "block":
        return [f"{a} {o} {b}" for a in _AREAS for o in _ORDINALS for b in ("block", "stage")]
    if kind == "number":
        return list(_NUMBERS)
    if kind == "number unit":
        singular = [u for u in _UNITS if not u.endswith("s") and not u.startswith(("g", "m"))]
        articles = [f"a {u}" for u in singular] + [f"a couple of {u}s" for u in singular]
        return [f"{n} {u}" for n in _NUMBERS for u in _UNITS] + articles
    if kind == "fraction unit":
        return [f"{f} {u}" for f in _FRACTIONS for u in _UNITS]
    if kind == "word ingredient":
        return [f"{w} {i}" for w in _PREF_WORDS for i in _INGREDIENTS]
    if kind == "ingredient amount":
        return [f"{i} {a}" for i in _INGREDIENTS for a in _AMOUNT_WORDS]
    if kind == "phrase":
        return list(_PREF_PHRASES)
    raise ValueError(kind)


_PLACEHOLDER = re.compile(r"\{([A-Z]+)\}")
_HELD_OUT_FRACTION = 0.25  # of TEMPLATES and VALUES, for test
_DEV_FRACTION = 1 / 3  # of the rest of TEMPLATES and VALUES, for dev
_SUFFIXES = ("", "?", "!", ".", ", please")
_SUFFIX_WEIGHTS = (60, 12, 8, 12, 8)
_ENTITY_WEIGHT = 3  # templates with entities are drawn 3x as often as zero-entity chit-chat
_FILLER_RATE = 0.25  # train only: chance that a literal gap of a template gets a filler word
_COINED_FILLERS = 200  # made-up filler words (besides the train templates' own words)


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str


@dataclass(frozen=True)
class Example:
    text: str
    spans: tuple[Span, ...]


@dataclass(frozen=True)
class Pools:
    """The templates and entity values one split may draw from."""

    templates: tuple[str, ...]
    values: Mapping[str, tuple[str, ...]]


def template_labels(template: str) -> tuple[str, ...]:
    """Labels of the placeholders in a template, in order."""
    return tuple(_PLACEHOLDER.findall(template))


def _hold_out(
    items: tuple[str, ...], rng: random.Random, fraction: float = _HELD_OUT_FRACTION
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split items into disjoint (kept, held-out) parts, each in the original order."""
    shuffled = list(items)
    rng.shuffle(shuffled)
    held = frozenset(shuffled[: max(1, round(len(items) * fraction))])
    return tuple(x for x in items if x not in held), tuple(x for x in items if x in held)


def _covers_all(templates: tuple[str, ...]) -> bool:
    """Whether the templates can produce every label and also a zero-entity utterance."""
    found = {label for t in templates for label in template_labels(t)}
    return found == set(LABELS) and any(not template_labels(t) for t in templates)


def _phrases(value: str) -> set[str]:
    """Every run of whole words in a value ("a b c" -> "a", "b", "c", "a b", "b c", "a b c")."""
    words = value.split()
    return {" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)}


def extra_values(seed: int, held_out: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Compositional training values per label, sampled from the word lists above.

    None equals a value of VALUES (any label), contains one of held_out (the dev and test values)
    as a whole-word phrase or appears under two labels.
    """
    rng = random.Random(f"{seed}:extra-values")
    banned = set(held_out)
    taken = {value for label in LABELS for value in VALUES[label]}
    values: dict[str, tuple[str, ...]] = {}
    for label in LABELS:
        chosen: list[str] = []
        for kind, count in _EXTRA_COUNTS[label]:
            pool = [
                v for v in _candidates(kind, rng) if v not in taken and not _phrases(v) & banned
            ]
            picked = rng.sample(pool, min(count, len(pool)))
            taken.update(picked)
            chosen.extend(picked)
        values[label] = tuple(chosen)
    return values


def _split_templates(
    templates: tuple[str, ...], rng: random.Random, fraction: float = _HELD_OUT_FRACTION
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    for _ in range(1000):  # re-draw until both parts can yield every label
        kept, held = _hold_out(templates, rng, fraction)
        if _covers_all(kept) and _covers_all(held):
            return kept, held
    raise RuntimeError("cannot split the templates so that both parts cover all labels")


def split_pools(seed: int = 13) -> dict[str, Pools]:
    """Pairwise disjoint train/dev/test pools (see the module docstring)."""
    rng = random.Random(seed)
    rest_templates, test_templates = _split_templates(TEMPLATES, rng)
    rest = {label: _hold_out(VALUES[label], rng) for label in LABELS}
    test = Pools(test_templates, {label: rest[label][1] for label in LABELS})
    rng = random.Random(f"{seed}:dev-pools")
    core_templates, dev_templates = _split_templates(rest_templates, rng, _DEV_FRACTION)
    core = {label: _hold_out(rest[label][0], rng, _DEV_FRACTION) for label in LABELS}
    dev = Pools(dev_templates, {label: core[label][1] for label in LABELS})
    held_out = (v for pool in (dev, test) for label in LABELS for v in pool.values[label])
    extra = extra_values(seed, held_out)
    train = Pools(
        core_templates + EXTRA_TEMPLATES,
        {label: core[label][0] + extra[label] for label in LABELS},
    )
    return {"train": train, "dev": dev, "test": test}


def _transform_case(text: str, title: bool) -> str:
    """ALL CAPS or Title Case, character by character so that span offsets stay valid.

    str.upper()/str.title() may change lengths ("ß" -> "SS") and title() capitalises after
    apostrophes ("Haldiram'S"), so neither is used directly.
    """
    out = []
    for i, char in enumerate(text):
        upper = char.upper()
        word_start = i == 0 or text[i - 1] == " "
        out.append(upper if len(upper) == 1 and (word_start or not title) else char)
    return "".join(out)


def literal_words(templates: Iterable[str]) -> tuple[str, ...]:
    """The words of the templates outside their placeholders, sorted and without repeats."""
    words = {w for t in templates for w in re.findall(r"[a-z']+", _PLACEHOLDER.sub(" ", t))}
    return tuple(sorted(words))


def _fillers(templates: tuple[str, ...], seed: int) -> tuple[str, ...]:
    """Filler words for training: the templates' own words plus as many made-up short words.

    The made-up ones stand for the words of phrasings never seen in training: next to an entity,
    an unfamiliar word is not therefore part of it.
    """
    rng = random.Random(f"{seed}:fillers")
    words = literal_words(templates)
    coined = {
        "".join(rng.choices(_SYLLABLES, k=rng.choice((1, 2)))) for _ in range(_COINED_FILLERS)
    }
    return words + tuple(sorted(coined - set(words)))


def _insert_word(part: str, word: str, rng: random.Random, first: bool, last: bool) -> str:
    """Slip a word into a template's literal text at a word boundary."""
    slots = [(i + 1, f"{word} ") for i, char in enumerate(part) if char == " "]
    if first:
        slots.append((0, f"{word} "))
    if last:
        slots.append((len(part), f" {word}"))
    if not slots:
        return part
    at, insert = rng.choice(slots)
    return part[:at] + insert + part[at:]


def render(
    template: str,
    values: Mapping[str, tuple[str, ...]],
    rng: random.Random,
    fillers: tuple[str, ...] = (),
) -> Example:
    """Fill a template with random values and random surface noise, tracking exact offsets.

    fillers (training-time augmentation): words that may be slipped into the literal text, one
    per gap with probability _FILLER_RATE, so that the model learns to bound entities by what
    they look like rather than by the exact words of the templates it has seen. Without fillers
    no random numbers are drawn for them, so the other splits render exactly as before.
    """
    parts = _PLACEHOLDER.split(template)  # literal, label, literal, label, ..., literal
    text, spans = "", []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            if fillers and rng.random() < _FILLER_RATE:
                word = rng.choice(fillers)
                part = _insert_word(part, word, rng, first=i == 0, last=i == len(parts) - 1)
            text += part.replace(" ", "  ", 1) if rng.random() < 0.04 else part
            continue
        value = rng.choice(values[part])
        spans.append(Span(len(text), len(text) + len(value), part))
        text += value
        # "misal, kam teekha": a comma only between two entities and never inside "2 misal".
        if part != "QTY" and parts[i + 1] == " " and rng.random() < 0.15:
            text += ","
    text += rng.choices(_SUFFIXES, weights=_SUFFIX_WEIGHTS)[0]
    roll = rng.random()
    if roll < 0.06:
        text = _transform_case(text, title=False)
    elif roll < 0.16:
        text = _transform_case(text, title=True)
    return Example(text, tuple(spans))


def generate_splits(
    seed: int = 13, n_train: int = 2400, n_dev: int = 300, n_test: int = 600
) -> dict[str, list[Example]]:
    """Generate the train/dev/test splits.

    Each split samples from its own seeded stream, so changing n_train leaves dev and test as they
    were. Only train is augmented with filler words (taken from its own templates); dev and test
    are rendered like real held-out data.
    """
    pools = split_pools(seed)
    sizes = {"train": n_train, "dev": n_dev, "test": n_test}
    splits: dict[str, list[Example]] = {}
    for name, size in sizes.items():
        rng = random.Random(f"{seed}:{name}")
        pool = pools[name]
        fillers = _fillers(pool.templates, seed) if name == "train" else ()
        weights = [_ENTITY_WEIGHT if template_labels(t) else 1 for t in pool.templates]
        templates = rng.choices(pool.templates, weights=weights, k=size)
        splits[name] = [render(t, pool.values, rng, fillers) for t in templates]
    return splits


def write_jsonl(examples: Iterable[Example], path: str | Path) -> None:
    """Write one {"text", "entities": [{"start", "end", "label"}]} object per line, UTF-8."""
    with Path(path).open("w", encoding="utf-8") as f:
        for ex in examples:
            entities = [{"start": s.start, "end": s.end, "label": s.label} for s in ex.spans]
            f.write(json.dumps({"text": ex.text, "entities": entities}, ensure_ascii=False) + "\n")


def read_jsonl(path: str | Path) -> list[Example]:
    """Read examples written by write_jsonl (blank lines are skipped)."""
    examples = []
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            spans = tuple(Span(e["start"], e["end"], e["label"]) for e in record["entities"])
            examples.append(Example(record["text"], spans))
    return examples
