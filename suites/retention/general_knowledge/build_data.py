"""Build data.jsonl for the general-knowledge retention suite.

All items below were written for this project and are released under CC0-1.0.
Each item is (category, question, correct_answer, [three distractors]).
Choices are shuffled deterministically with random.Random(7) so that, within
every category, the correct-answer index is spread evenly over 0..3.

Usage: python3 build_data.py   (rewrites data.jsonl next to this file)
"""

import json
import random
from pathlib import Path

SEED = 7
OUT = Path(__file__).resolve().parent / "data.jsonl"
CATEGORY_ORDER = ["geography", "science", "arithmetic", "reasoning", "language"]

GEOGRAPHY = [
    ("What is the capital of France?", "Paris", ["Lyon", "Marseille", "Nice"]),
    ("What is the capital of Japan?", "Tokyo", ["Osaka", "Kyoto", "Hiroshima"]),
    ("What is the capital of Italy?", "Rome", ["Milan", "Venice", "Naples"]),
    ("What is the capital of Germany?", "Berlin", ["Munich", "Hamburg", "Frankfurt"]),
    ("What is the capital of Spain?", "Madrid", ["Barcelona", "Seville", "Valencia"]),
    ("What is the capital of the United Kingdom?", "London", ["Manchester", "Liverpool", "Birmingham"]),
    ("What is the capital of Egypt?", "Cairo", ["Alexandria", "Luxor", "Aswan"]),
    ("What is the capital of Canada?", "Ottawa", ["Toronto", "Vancouver", "Montreal"]),
    ("What is the capital of Russia?", "Moscow", ["Saint Petersburg", "Kazan", "Novosibirsk"]),
    ("What is the capital of China?", "Beijing", ["Shanghai", "Guangzhou", "Chengdu"]),
    ("What is the capital of India?", "New Delhi", ["Mumbai", "Kolkata", "Chennai"]),
    ("What is the capital of the United States?", "Washington, D.C.", ["New York City", "Los Angeles", "Chicago"]),
    ("What is the capital of Greece?", "Athens", ["Thessaloniki", "Sparta", "Patras"]),
    ("What is the capital of Portugal?", "Lisbon", ["Porto", "Faro", "Braga"]),
    ("What is the capital of Mexico?", "Mexico City", ["Cancún", "Guadalajara", "Tijuana"]),
    ("What is the capital of Brazil?", "Brasília", ["Rio de Janeiro", "São Paulo", "Salvador"]),
    ("What is the capital of Argentina?", "Buenos Aires", ["Córdoba", "Rosario", "Mendoza"]),
    ("What is the capital of Kenya?", "Nairobi", ["Mombasa", "Kisumu", "Nakuru"]),
    ("What is the capital of Ireland?", "Dublin", ["Cork", "Galway", "Limerick"]),
    ("What is the capital of Norway?", "Oslo", ["Bergen", "Trondheim", "Stavanger"]),
    ("What is the capital of South Korea?", "Seoul", ["Busan", "Incheon", "Daegu"]),
    ("On which continent is Kenya located?", "Africa", ["Asia", "Europe", "South America"]),
    ("On which continent is Brazil located?", "South America", ["Africa", "Europe", "Asia"]),
    ("Which is the largest continent by area?", "Asia", ["Africa", "Europe", "Antarctica"]),
    ("On which continent is the South Pole located?", "Antarctica", ["Australia", "South America", "Africa"]),
    ("Which is the largest ocean on Earth?", "Pacific Ocean", ["Atlantic Ocean", "Indian Ocean", "Arctic Ocean"]),
    ("Which ocean lies between Europe and North America?", "Atlantic Ocean", ["Pacific Ocean", "Indian Ocean", "Southern Ocean"]),
    ("Which is the smallest of the world's five oceans?", "Arctic Ocean", ["Pacific Ocean", "Atlantic Ocean", "Indian Ocean"]),
    ("Which ocean lies directly south of India?", "Indian Ocean", ["Pacific Ocean", "Atlantic Ocean", "Arctic Ocean"]),
    ("Which famous river flows through Egypt?", "Nile", ["Amazon", "Mississippi", "Danube"]),
    ("Which South American river carries more water than any other river in the world?", "Amazon", ["Nile", "Yangtze", "Mississippi"]),
    ("Which river flows through London?", "Thames", ["Seine", "Danube", "Rhine"]),
    ("Which river flows through Paris?", "Seine", ["Thames", "Tiber", "Rhine"]),
    ("What is the longest river in China?", "Yangtze", ["Ganges", "Mississippi", "Danube"]),
    ("Which river flows through the city of Rome?", "Tiber", ["Seine", "Thames", "Danube"]),
    ("In which city is the Eiffel Tower?", "Paris", ["London", "Rome", "Berlin"]),
    ("In which city is the Statue of Liberty?", "New York City", ["Washington, D.C.", "Chicago", "Boston"]),
    ("In which country are the Great Pyramids of Giza?", "Egypt", ["Mexico", "Greece", "India"]),
    ("In which city is the Colosseum?", "Rome", ["Athens", "Paris", "Madrid"]),
    ("In which country is the Taj Mahal?", "India", ["Egypt", "Turkey", "Thailand"]),
    ("The Great Wall is located in which country?", "China", ["Japan", "India", "Russia"]),
    ("In which city is the clock tower known as Big Ben?", "London", ["Paris", "Dublin", "Edinburgh"]),
    ("In which country is the Sydney Opera House?", "Australia", ["New Zealand", "Canada", "United Kingdom"]),
    ("In which mountain range is Mount Everest?", "Himalayas", ["Alps", "Andes", "Rocky Mountains"]),
    ("What is the highest mountain in the world above sea level?", "Mount Everest", ["Mont Blanc", "Mount Kilimanjaro", "Mount Fuji"]),
    ("What is the largest hot desert in the world?", "Sahara", ["Gobi", "Kalahari", "Mojave"]),
    ("On which continent is the Sahara Desert?", "Africa", ["Asia", "South America", "Australia"]),
    ("In which country is the Leaning Tower of Pisa?", "Italy", ["Spain", "France", "Greece"]),
    ("In which country is Machu Picchu?", "Peru", ["Mexico", "Egypt", "Brazil"]),
    ("Which country has the largest land area in the world?", "Russia", ["Brazil", "India", "Australia"]),
    ("Which U.S. state is made up of a group of islands in the Pacific Ocean?", "Hawaii", ["Alaska", "Texas", "Colorado"]),
    ("The Panama Canal connects which two oceans?", "Atlantic and Pacific", ["Atlantic and Indian", "Pacific and Arctic", "Indian and Arctic"]),
    ("The Suez Canal connects the Mediterranean Sea with which sea?", "Red Sea", ["Black Sea", "Baltic Sea", "North Sea"]),
    ("Which of these countries is landlocked (has no coastline)?", "Switzerland", ["Italy", "Spain", "Portugal"]),
    ("In which country is Mount Fuji?", "Japan", ["China", "South Korea", "Nepal"]),
    ("On which continent are the Andes mountains?", "South America", ["Africa", "Europe", "Australia"]),
    ("Which sea lies between southern Europe and northern Africa?", "Mediterranean Sea", ["Caribbean Sea", "Baltic Sea", "North Sea"]),
    ("Which is the largest country in South America by area?", "Brazil", ["Argentina", "Peru", "Chile"]),
    ("The Christ the Redeemer statue overlooks which city?", "Rio de Janeiro", ["Buenos Aires", "Lima", "Mexico City"]),
    ("In which city is the Golden Gate Bridge?", "San Francisco", ["Los Angeles", "Seattle", "New York City"]),
]

SCIENCE = [
    ("At sea level, at what temperature does pure water freeze?", "0 °C", ["100 °C", "32 °C", "-20 °C"]),
    ("At sea level, at what temperature does pure water boil?", "100 °C", ["0 °C", "50 °C", "212 °C"]),
    ("Which force pulls objects toward the ground when you drop them?", "Gravity", ["Magnetism", "Friction", "Static electricity"]),
    ("What is the SI unit of force?", "Newton", ["Joule", "Watt", "Pascal"]),
    ("What is the SI unit of electric current?", "Ampere", ["Volt", "Ohm", "Watt"]),
    ("What is the SI unit of energy?", "Joule", ["Newton", "Pascal", "Kelvin"]),
    ("Approximately how fast does light travel in a vacuum?", "300,000 km per second", ["300 km per second", "3,000 km per second", "30 km per second"]),
    ("Which of these travels fastest through air?", "Light", ["Sound", "A racing car", "A passenger jet"]),
    ("What kind of energy does a moving object have because of its motion?", "Kinetic energy", ["Nuclear energy", "Chemical energy", "Sound energy"]),
    ("Which of these metals is strongly attracted to a magnet?", "Iron", ["Copper", "Aluminium", "Gold"]),
    ("Which instrument is used to measure temperature?", "Thermometer", ["Barometer", "Speedometer", "Ruler"]),
    ("Which instrument is used to measure air pressure?", "Barometer", ["Thermometer", "Odometer", "Compass"]),
    ("Sound cannot travel through which of these?", "A vacuum", ["Water", "Air", "Steel"]),
    ("Which of these materials is a good conductor of electricity?", "Copper", ["Rubber", "Wood", "Glass"]),
    ("What is the chemical formula for water?", "H2O", ["CO2", "O2", "NaCl"]),
    ("Which gas do plants take in from the air to make their food?", "Carbon dioxide", ["Oxygen", "Helium", "Neon"]),
    ("Which gas do humans need to breathe in to stay alive?", "Oxygen", ["Carbon dioxide", "Helium", "Neon"]),
    ("Which gas makes up most of the Earth's atmosphere?", "Nitrogen", ["Oxygen", "Carbon dioxide", "Hydrogen"]),
    ("What is the chemical symbol for gold?", "Au", ["Ag", "Gd", "Go"]),
    ("What is the chemical symbol for sodium?", "Na", ["So", "Sd", "Sm"]),
    ("What is the chemical symbol for iron?", "Fe", ["Ir", "In", "Fi"]),
    ("What is the chemical name for ordinary table salt?", "Sodium chloride", ["Calcium carbonate", "Potassium nitrate", "Sodium bicarbonate"]),
    ("What is the pH of pure water at room temperature?", "7", ["0", "14", "2"]),
    ("Lemon juice is best described as which of these?", "An acid", ["A base", "A metal", "A gas"]),
    ("Which particle in an atom has a positive electric charge?", "Proton", ["Electron", "Neutron", "Photon"]),
    ("Which particle in an atom has a negative electric charge?", "Electron", ["Proton", "Neutron", "Nucleus"]),
    ("Ice is water in which state of matter?", "Solid", ["Liquid", "Gas", "Plasma"]),
    ("What is it called when water vapour cools and turns back into liquid water?", "Condensation", ["Evaporation", "Melting", "Freezing"]),
    ("What is it called when liquid water slowly turns into water vapour?", "Evaporation", ["Condensation", "Freezing", "Melting"]),
    ("Diamonds are made of which element?", "Carbon", ["Silicon", "Iron", "Oxygen"]),
    ("What is the lightest chemical element?", "Hydrogen", ["Helium", "Oxygen", "Carbon"]),
    ("Which gas is commonly used to fill party balloons so that they float?", "Helium", ["Oxygen", "Carbon dioxide", "Nitrogen"]),
    ("Which organ pumps blood around the human body?", "Heart", ["Lungs", "Liver", "Kidney"]),
    ("Which organs do humans use to breathe?", "Lungs", ["Heart", "Stomach", "Liver"]),
    ("What is the basic unit of life that all living things are made of?", "Cell", ["Atom", "Organ", "Tissue"]),
    ("What is the process by which plants use sunlight to make their food?", "Photosynthesis", ["Respiration", "Digestion", "Fermentation"]),
    ("Which green pigment in leaves captures sunlight?", "Chlorophyll", ["Hemoglobin", "Melanin", "Keratin"]),
    ("How many bones are in a typical adult human body?", "206", ["106", "306", "156"]),
    ("Which blood cells carry oxygen around the body?", "Red blood cells", ["White blood cells", "Platelets", "Nerve cells"]),
    ("Which of these animals is a mammal?", "Whale", ["Shark", "Salmon", "Octopus"]),
    ("How many legs does a spider have?", "8", ["6", "10", "4"]),
    ("How many legs does an insect have?", "6", ["8", "4", "10"]),
    ("A frog belongs to which group of animals?", "Amphibians", ["Reptiles", "Mammals", "Fish"]),
    ("What are animals that eat only plants called?", "Herbivores", ["Carnivores", "Omnivores", "Predators"]),
    ("What do bees collect from flowers to make honey?", "Nectar", ["Sap", "Seeds", "Bark"]),
    ("A caterpillar grows up to become which of these?", "A butterfly", ["A beetle", "A spider", "A bee"]),
    ("Which organ controls thinking and memory in the human body?", "Brain", ["Heart", "Stomach", "Lungs"]),
    ("Which vitamin does human skin make when it is exposed to sunlight?", "Vitamin D", ["Vitamin A", "Vitamin C", "Vitamin B12"]),
    ("Through which part do most plants take up water from the soil?", "Roots", ["Leaves", "Flowers", "Fruits"]),
    ("Which planet is closest to the Sun?", "Mercury", ["Venus", "Earth", "Mars"]),
    ("Which is the largest planet in our solar system?", "Jupiter", ["Saturn", "Neptune", "Earth"]),
    ("Which planet is known as the Red Planet?", "Mars", ["Venus", "Jupiter", "Mercury"]),
    ("What is at the center of our solar system?", "The Sun", ["The Earth", "The Moon", "Jupiter"]),
    ("About how long does it take the Earth to travel once around the Sun?", "One year", ["One day", "One month", "Ten years"]),
    ("About how long does it take the Earth to spin once on its axis?", "24 hours", ["1 hour", "7 days", "365 days"]),
    ("What is the name of the Earth's natural satellite?", "The Moon", ["The Sun", "Mars", "Venus"]),
    ("Which planet is best known for its large, bright rings?", "Saturn", ["Mars", "Mercury", "Venus"]),
    ("How many planets are in our solar system?", "8", ["7", "10", "12"]),
    ("What kind of object is the Sun?", "A star", ["A planet", "A moon", "A comet"]),
    ("What type of rock forms when melted rock such as lava cools and hardens?", "Igneous rock", ["Sedimentary rock", "Metamorphic rock", "Fossil rock"]),
]

ARITHMETIC = [
    ("What is 7 × 8?", "56", ["54", "48", "64"]),
    ("What is 12 + 15?", "27", ["25", "28", "37"]),
    ("What is 100 - 37?", "63", ["73", "67", "53"]),
    ("What is 9 × 6?", "54", ["56", "45", "63"]),
    ("What is 81 ÷ 9?", "9", ["8", "7", "11"]),
    ("What is 10% of 200?", "20", ["2", "40", "10"]),
    ("What is 50% of 80?", "40", ["20", "60", "30"]),
    ("What is 1/2 + 1/4?", "3/4", ["2/6", "1/6", "2/4"]),
    ("What is 3/4 written as a percentage?", "75%", ["34%", "43%", "25%"]),
    ("What is 25% of 60?", "15", ["25", "20", "12"]),
    ("What is 15 × 3?", "45", ["35", "18", "48"]),
    ("What is 144 ÷ 12?", "12", ["11", "14", "13"]),
    ("What is 11 × 11?", "121", ["111", "122", "112"]),
    ("What is half of 50?", "25", ["20", "30", "100"]),
    ("What is 1000 - 1?", "999", ["990", "900", "9999"]),
    ("What is 20% of 50?", "10", ["5", "20", "25"]),
    ("What is 4 × 9?", "36", ["32", "45", "27"]),
    ("What is 56 ÷ 7?", "8", ["7", "9", "6"]),
    ("What is 45 + 55?", "100", ["90", "110", "95"]),
    ("What is two thirds of 9?", "6", ["3", "4", "8"]),
    ("What is one quarter of 100?", "25", ["4", "40", "75"]),
    ("What is 0.5 + 0.25?", "0.75", ["0.30", "0.55", "0.725"]),
    ("How many minutes are there in 2 hours?", "120", ["100", "60", "200"]),
    ("What is 9 + 8?", "17", ["16", "18", "15"]),
    ("What is 3 × 11?", "33", ["30", "36", "31"]),
    ("What is 90 ÷ 3?", "30", ["20", "33", "60"]),
    ("What is 7 squared (7 × 7)?", "49", ["14", "42", "56"]),
    ("What is the square root of 64?", "8", ["6", "16", "32"]),
    ("What is 1/2 written as a decimal?", "0.5", ["0.2", "1.2", "0.12"]),
    ("What is 10 × 10?", "100", ["20", "1000", "101"]),
    ("What is 250 + 250?", "500", ["450", "550", "5000"]),
    ("A shirt costs $20. It is on sale for 50% off. What is the sale price?", "$10", ["$15", "$5", "$40"]),
    ("What is 6 × 7?", "42", ["36", "48", "49"]),
    ("What is 72 ÷ 8?", "9", ["8", "7", "12"]),
    ("What is 3/10 written as a percentage?", "30%", ["3%", "13%", "70%"]),
    ("What is 1/3 + 1/3?", "2/3", ["2/6", "1/9", "1/6"]),
    ("What is 15 + 28?", "43", ["33", "42", "44"]),
    ("What is 200 - 75?", "125", ["135", "175", "115"]),
    ("What is 12 × 12?", "144", ["124", "132", "122"]),
    ("What is 1% of 300?", "3", ["30", "0.3", "300"]),
]

REASONING = [
    ("If it is raining, what should you take to stay dry when you go outside?", "An umbrella", ["Sunglasses", "A paper fan", "An ice cream"]),
    ("If you put a cup of water in the freezer overnight, what will it most likely become?", "Ice", ["Steam", "Milk", "Sand"]),
    ("Where in a kitchen do people usually keep food cold?", "In the refrigerator", ["In the oven", "In the toaster", "In the microwave"]),
    ("You are very thirsty. What is the most sensible thing to do?", "Drink a glass of water", ["Eat salty crackers", "Run a long race", "Sit in the hot sun"]),
    ("Tom is taller than Sam, and Sam is taller than Ben. Who is the shortest?", "Ben", ["Tom", "Sam", "They are all the same height"]),
    ("If today is Monday, what day will it be tomorrow?", "Tuesday", ["Sunday", "Wednesday", "Friday"]),
    ("If today is Friday, what day was it yesterday?", "Thursday", ["Saturday", "Wednesday", "Sunday"]),
    ("Which tool is best for cutting a sheet of paper?", "Scissors", ["A spoon", "A pillow", "A sponge"]),
    ("You walk into a dark room at night and want to see. What should you do?", "Turn on a light", ["Put on sunglasses", "Close the curtains", "Turn off the lamp"]),
    ("What will happen to an ice cube left in the sun on a hot day?", "It will melt", ["It will grow bigger", "It will turn into stone", "It will freeze harder"]),
    ("What do most plants need in order to grow?", "Sunlight and water", ["Only darkness", "Salt water and no light", "Plastic and glass"]),
    ("If you drop a glass cup onto a hard stone floor, what will most likely happen?", "It will break", ["It will bounce up to the ceiling", "It will turn into water", "It will float in the air"]),
    ("Which tool is best for knocking a nail into wood?", "A hammer", ["A spoon", "A pillow", "A paintbrush"]),
    ("It is very cold outside. What should you wear to stay warm?", "A warm coat", ["Shorts", "Sunglasses", "Sandals"]),
    ("What does a red traffic light tell drivers to do?", "Stop", ["Go faster", "Turn around", "Honk the horn"]),
    ("Anna has 3 apples and gives 1 to a friend. How many apples does Anna have left?", "2", ["1", "3", "4"]),
    ("What number comes next in the pattern 2, 4, 6, 8, ...?", "10", ["9", "12", "16"]),
    ("Which month comes right after March?", "April", ["May", "February", "June"]),
    ("How many days are there in one week?", "7", ["5", "6", "10"]),
    ("How many hours are there in one day?", "24", ["12", "60", "100"]),
    ("In the English alphabet, which letter comes right after C?", "D", ["B", "E", "F"]),
    ("You are hungry. What is the most sensible thing to do?", "Eat some food", ["Take a cold shower", "Put on a hat", "Turn off the lights"]),
    ("Which of these is NOT a fruit?", "Carrot", ["Apple", "Banana", "Grape"]),
    ("In places that have four seasons, which season is usually the coldest?", "Winter", ["Summer", "Spring", "Autumn"]),
    ("Where would you usually go to borrow a book for free?", "A library", ["A bakery", "A gas station", "A swimming pool"]),
    ("If you are very sick, who is the best person to visit?", "A doctor", ["A baker", "A pilot", "A painter"]),
    ("You see a fire starting in your building. What is the safest thing to do?", "Leave the building and call for help", ["Hide in a closet", "Go back to sleep", "Stay inside and open the windows"]),
    ("A clock shows 3:00. What time will it show one hour later?", "4:00", ["2:00", "3:30", "5:00"]),
    ("What do people usually write on with a pencil?", "Paper", ["Water", "Soup", "Air"]),
    ("Which of these usually moves the fastest?", "An airplane", ["A bicycle", "A snail", "A person walking"]),
    ("Which of these animals is the biggest?", "An elephant", ["An ant", "A cat", "A rabbit"]),
    ("Which of these is most likely to float in water?", "A piece of wood", ["A rock", "A steel nail", "A brick"]),
    ("If you mix red paint and blue paint together, what colour do you get?", "Purple", ["Green", "Orange", "Yellow"]),
    ("All cats are animals. Whiskers is a cat. What must be true?", "Whiskers is an animal", ["Whiskers is a dog", "Whiskers is a plant", "Whiskers is not an animal"]),
    ("Lisa is older than Mark, and Mark is older than Jo. Who is the oldest?", "Lisa", ["Mark", "Jo", "They are all the same age"]),
    ("You have 10 sweets and share them equally between yourself and one friend. How many sweets does each of you get?", "5", ["2", "10", "4"]),
    ("A shop opens at 9 a.m. and closes at 5 p.m. on the same day. For how many hours is it open?", "8", ["4", "9", "14"]),
    ("Which of these do people wear on their feet?", "Shoes", ["Gloves", "A hat", "A scarf"]),
    ("What do you usually need to open a locked door?", "A key", ["A spoon", "A pillow", "A sock"]),
    ("What do people use to brush their teeth?", "A toothbrush", ["A hairbrush", "A fork", "A paintbrush"]),
]

LANGUAGE = [
    ("What is the opposite of \"hot\"?", "Cold", ["Warm", "Spicy", "Bright"]),
    ("What is the opposite of \"big\"?", "Small", ["Large", "Tall", "Heavy"]),
    ("What is the opposite of \"happy\"?", "Sad", ["Glad", "Funny", "Excited"]),
    ("What is the opposite of \"up\"?", "Down", ["Over", "Above", "High"]),
    ("What is the plural of \"child\"?", "Children", ["Childs", "Childes", "Childen"]),
    ("What is the plural of \"mouse\" (the animal)?", "Mice", ["Mouses", "Meese", "Mousen"]),
    ("What is the plural of \"tooth\"?", "Teeth", ["Tooths", "Toothes", "Teeths"]),
    ("What is the plural of \"foot\"?", "Feet", ["Foots", "Feets", "Footes"]),
    ("Which word means the same as \"big\"?", "Large", ["Tiny", "Thin", "Slow"]),
    ("What does the word \"rapid\" mean?", "Fast", ["Slow", "Quiet", "Heavy"]),
    ("What is the past tense of \"go\"?", "Went", ["Goed", "Goes", "Going"]),
    ("What is the past tense of \"eat\"?", "Ate", ["Eated", "Eats", "Eating"]),
    ("Which of these words is a noun?", "Table", ["Quickly", "Beautiful", "Often"]),
    ("What is the opposite of \"early\"?", "Late", ["Soon", "First", "Quick"]),
    ("What does the word \"enormous\" mean?", "Very large", ["Very small", "Very old", "Very loud"]),
    ("What is the opposite of \"open\"?", "Closed", ["Empty", "Wide", "Full"]),
    ("What is a baby cat called?", "Kitten", ["Puppy", "Calf", "Foal"]),
    ("Which word rhymes with \"cat\"?", "Hat", ["Dog", "Cup", "Sun"]),
    ("Which word means the same as \"begin\"?", "Start", ["End", "Stop", "Finish"]),
    ("What is the opposite of \"always\"?", "Never", ["Often", "Sometimes", "Usually"]),
]

ITEMS = {
    "geography": GEOGRAPHY,
    "science": SCIENCE,
    "arithmetic": ARITHMETIC,
    "reasoning": REASONING,
    "language": LANGUAGE,
}


def build_records():
    rng = random.Random(SEED)
    records = []
    n = 0
    for category in CATEGORY_ORDER:
        items = ITEMS[category]
        # Balanced answer positions within the category, then shuffled.
        positions = [i % 4 for i in range(len(items))]
        rng.shuffle(positions)
        for (question, correct, distractors), pos in zip(items, positions):
            assert len(distractors) == 3, question
            others = list(distractors)
            rng.shuffle(others)
            choices = others[:pos] + [correct] + others[pos:]
            n += 1
            records.append({
                "id": f"gk-{n:04d}",
                "category": category,
                "question": question,
                "choices": choices,
                "answer": pos,
            })
    return records


def main():
    records = build_records()
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    with open(OUT, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    print(f"wrote {len(records)} items to {OUT}")


if __name__ == "__main__":
    main()
