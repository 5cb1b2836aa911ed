"""The grammar probe: 66 tool-calling tasks on tools that are NOT in the project's suite, written to decide the
constrained mode's value choices (docs/readme/eval.md, "Lever 1, round 2").

Values are written the ways people write them (units glued to numbers, thousands separators, percentages,
number words, dates in words, currency/country/state names, multi-word names, quotations) and 20 of the
tasks are negative (5 of them near misses): no offered tool fits, the right reply is an answer with no call (``expected`` is null).

    python eval/probe/make_probe.py          # writes eval/probe/grammar_probe.jsonl
"""

from __future__ import annotations

import json
from pathlib import Path


def fn(name, description, properties, required=None):
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": list(properties) if required is None else required}}}


S = {"type": "string"}
NUM = {"type": "number"}
INT = {"type": "integer"}
DATE = {"type": "string", "format": "date", "description": "Date (YYYY-MM-DD)."}
CODE3 = {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 currency code."}

TOOLS = {
    "bmi": fn("calculate_bmi", "Calculate the body mass index from weight and height.",
              {"weight_kg": {**NUM, "description": "Weight in kilograms."},
               "height_m": {**NUM, "description": "Height in meters."}}),
    "restaurant": fn("book_restaurant", "Reserve a table at a restaurant.",
                     {"restaurant": {**S, "description": "Restaurant name."},
                      "party_size": {**INT, "description": "Number of guests.", "minimum": 1},
                      "date": DATE}),
    "food": fn("order_food", "Order a dish for delivery.",
               {"dish": {**S, "description": "The dish to order."},
                "quantity": {**INT, "description": "How many portions.", "default": 1}}, ["dish"]),
    "temp": fn("convert_temperature", "Convert a temperature between scales.",
               {"value": NUM, "from_scale": {"type": "string", "enum": ["celsius", "fahrenheit", "kelvin"]},
                "to_scale": {"type": "string", "enum": ["celsius", "fahrenheit", "kelvin"]}}),
    "fx": fn("get_exchange_rate", "Look up the exchange rate between two currencies.",
             {"base": CODE3, "target": CODE3}),
    "tax": fn("calculate_sales_tax", "Calculate the sales tax on a purchase in a US state.",
              {"state": {"type": "string", "pattern": "^[A-Z]{2}$", "description": "Two-letter US state code."},
               "amount": {**NUM, "description": "Purchase amount in dollars."}}),
    "holidays": fn("list_public_holidays", "List the public holidays of a country in a year.",
                   {"country_code": {"type": "string", "pattern": "^[A-Z]{2}$",
                                     "description": "ISO 3166-1 alpha-2 country code."},
                    "year": INT}),
    "interest": fn("compound_interest", "Compute the value of an investment with compound interest.",
                   {"principal": {**NUM, "description": "Amount invested."},
                    "rate": {**NUM, "description": "Annual interest rate as a decimal fraction."},
                    "years": INT}),
    "population": fn("get_city_population", "Get the population of a city.", {"city": S}),
    "package": fn("track_package", "Track a parcel by its tracking number.", {"tracking_number": S}),
    "meeting": fn("schedule_meeting", "Schedule a meeting with attendees on a date.",
                  {"title": S, "date": DATE,
                   "attendees": {"type": "array", "items": S, "minItems": 1, "description": "Names of attendees."}}),
    "velocity": fn("final_velocity", "Compute the final velocity of an accelerating object.",
                   {"initial_velocity": {**NUM, "description": "Initial velocity in m/s."},
                    "acceleration": {**NUM, "description": "Acceleration in m/s^2."},
                    "time": {**NUM, "description": "Time in seconds."}}),
    "recipes": fn("find_recipes", "Find recipes that use the given ingredients.",
                  {"ingredients": {"type": "array", "items": S, "minItems": 1},
                   "max_minutes": {**INT, "description": "Longest cooking time in minutes."}}, ["ingredients"]),
    "hotel": fn("search_hotels", "Search hotels in a city for given dates.",
                {"city": S, "check_in": DATE, "nights": INT,
                 "guests": {**INT, "default": 2}}, ["city", "check_in", "nights"]),
    "thermostat": fn("set_thermostat", "Set the home thermostat.",
                     {"temperature": NUM, "mode": {"type": "string", "enum": ["heat", "cool", "auto"],
                                                   "default": "auto"}}, ["temperature"]),
    "gas": fn("ideal_gas_volume", "Compute the volume of an ideal gas.",
              {"moles": NUM, "temperature_k": {**NUM, "description": "Temperature in kelvin."},
               "pressure_atm": {**NUM, "description": "Pressure in atmospheres."}}),
    "bill": fn("split_bill", "Split a restaurant bill between people, with a tip.",
               {"total": NUM, "people": INT,
                "tip_percent": {**NUM, "description": "Tip as a percentage, e.g. 15."}}),
    "taxi": fn("book_taxi", "Book a taxi ride.", {"pickup": S, "dropoff": S}),
    "pets": fn("search_pets", "Search adoptable pets.",
               {"species": {"type": "string", "enum": ["dog", "cat", "rabbit", "bird"]},
                "max_age_years": INT}, ["species"]),
    "workout": fn("log_workout", "Log a workout in the fitness diary.",
                  {"activity": S, "duration_minutes": INT, "distance_km": NUM}, ["activity", "duration_minutes"]),
    "loan": fn("loan_payment", "Compute the monthly payment of a loan.",
               {"principal": NUM, "annual_rate": {**NUM, "description": "Annual interest rate as a fraction."},
                "years": INT}),
    "budget": fn("set_budget", "Set a monthly spending budget for a category.",
                 {"category": S, "amount": NUM, "currency": CODE3}),
    "flight_status": fn("get_flight_status", "Get the status of a flight by its number.",
                        {"flight_number": S}),
    "note": fn("save_note", "Save a note with a title and text.", {"title": S, "text": S}),
    "playlist": fn("create_playlist", "Create a music playlist.",
                   {"name": S, "songs": {"type": "array", "items": S, "minItems": 1}}),
    "crypto": fn("get_crypto_price", "Get the price of a cryptocurrency.",
                 {"symbol": {"type": "string", "enum": ["BTC", "ETH", "SOL", "DOGE"]}, "currency": CODE3}),
    "visa": fn("check_visa_requirements", "Check whether citizens of one country need a visa for another.",
               {"citizenship": {"type": "string", "pattern": "^[A-Z]{2}$", "description": "ISO alpha-2 code."},
                "destination": {"type": "string", "pattern": "^[A-Z]{2}$", "description": "ISO alpha-2 code."}}),
    "rent": fn("estimate_rent", "Estimate the monthly rent of an apartment.",
               {"city": S, "bedrooms": INT, "square_meters": NUM}),
}

T = TOOLS
TASKS = [
    # numbers glued to units, separators, percentages, number words, implied values
    ("bmi1", ["bmi", "temp", "taxi"], "What's my BMI? I weigh 70kg and I'm 1.75m tall.",
     ("calculate_bmi", {"weight_kg": 70, "height_m": 1.75})),
    ("bmi2", ["bmi", "workout"], "I am 1.82 m tall and weigh 95 kg, compute my body mass index",
     ("calculate_bmi", {"weight_kg": 95, "height_m": 1.82})),
    ("gas1", ["gas", "temp"], "What volume do 2 moles of gas take up at 298K and 1.5 atm?",
     ("ideal_gas_volume", {"moles": 2, "temperature_k": 298, "pressure_atm": 1.5})),
    ("tax1", ["tax", "bill", "fx"], "How much sales tax would I pay on a $25 purchase in California?",
     ("calculate_sales_tax", {"state": "CA", "amount": 25})),
    ("tax2", ["tax", "rent"], "Sales tax for a 1,250 dollar laptop bought in Texas",
     ("calculate_sales_tax", {"state": "TX", "amount": 1250})),
    ("interest1", ["interest", "loan", "bmi"], "If I invest $10,000 at 8% for 5 years, what will it be worth?",
     ("compound_interest", {"principal": 10000, "rate": 0.08, "years": 5})),
    ("interest2", ["interest", "fx"], "Grow 2,000,000 at an annual rate of 3.5 percent over twenty years",
     ("compound_interest", {"principal": 2000000, "rate": 0.035, "years": 20})),
    ("loan1", ["loan", "interest", "rent"], "Monthly payment on a $250,000 mortgage at 6.5% over thirty years?",
     ("loan_payment", {"principal": 250000, "annual_rate": 0.065, "years": 30})),
    ("bill1", ["bill", "loan"], "Split a $120 bill between four people with an 18% tip",
     ("split_bill", {"total": 120, "people": 4, "tip_percent": 18})),
    ("bill2", ["bill", "food", "taxi"], "We are three friends, the check is 96.50 and we tip 15%",
     ("split_bill", {"total": 96.5, "people": 3, "tip_percent": 15})),
    ("velocity1", ["velocity", "gas"], "A car starts from rest and accelerates at 3 m/s^2 for 10 seconds. Final velocity?",
     ("final_velocity", {"initial_velocity": 0, "acceleration": 3, "time": 10})),
    ("velocity2", ["velocity", "temp", "bmi"], "Initial speed 12 m/s, acceleration 2.5, time 4 s: what is the final velocity?",
     ("final_velocity", {"initial_velocity": 12, "acceleration": 2.5, "time": 4})),
    ("food1", ["food", "restaurant", "recipes"], "Order three portions of pasta carbonara please",
     ("order_food", {"dish": "pasta carbonara", "quantity": 3})),
    ("food2", ["food", "taxi"], "I'd like a dozen chicken wings delivered",
     ("order_food", {"dish": "chicken wings", "quantity": 12})),
    ("food3", ["food", "pets", "note"], "Get me a margherita pizza",
     ("order_food", {"dish": "margherita pizza"})),
    ("temp1", ["temp", "thermostat"], "Convert 100 degrees Fahrenheit to Celsius",
     ("convert_temperature", {"value": 100, "from_scale": "fahrenheit", "to_scale": "celsius"})),
    ("temp2", ["temp", "gas", "bmi"], "What is 300 kelvin in celsius?",
     ("convert_temperature", {"value": 300, "from_scale": "kelvin", "to_scale": "celsius"})),
    ("thermo1", ["thermostat", "temp"], "Set the heating to 21.5 degrees",
     ("set_thermostat", {"temperature": 21.5, "mode": "heat"})),
    ("thermo2", ["thermostat", "note", "taxi"], "Cool the house down to 19",
     ("set_thermostat", {"temperature": 19, "mode": "cool"})),
    # codes
    ("fx1", ["fx", "crypto", "tax"], "What's the exchange rate from US dollars to euros?",
     ("get_exchange_rate", {"base": "USD", "target": "EUR"})),
    ("fx2", ["fx", "budget"], "How many Japanese yen do I get for one British pound?",
     ("get_exchange_rate", {"base": "GBP", "target": "JPY"})),
    ("fx3", ["fx", "interest", "visa"], "Exchange rate CAD to MXN",
     ("get_exchange_rate", {"base": "CAD", "target": "MXN"})),
    ("crypto1", ["crypto", "fx"], "Price of Bitcoin in Swiss francs?",
     ("get_crypto_price", {"symbol": "BTC", "currency": "CHF"})),
    ("crypto2", ["crypto", "fx", "budget"], "How much is ETH in euros right now",
     ("get_crypto_price", {"symbol": "ETH", "currency": "EUR"})),
    ("budget1", ["budget", "bill"], "Set my groceries budget to 400 euros a month",
     ("set_budget", {"category": "groceries", "amount": 400, "currency": "EUR"})),
    ("holidays1", ["holidays", "visa", "population"], "List the public holidays in Japan for 2025",
     ("list_public_holidays", {"country_code": "JP", "year": 2025})),
    ("holidays2", ["holidays", "hotel"], "Which public holidays does Germany have in 2026?",
     ("list_public_holidays", {"country_code": "DE", "year": 2026})),
    ("visa1", ["visa", "holidays", "fx"], "Do Canadian citizens need a visa for Brazil? I hold a passport from Canada.",
     ("check_visa_requirements", {"citizenship": "CA", "destination": "BR"})),
    # dates
    ("restaurant1", ["restaurant", "food", "hotel"], "Book a table for 4 at Chez Panisse on August 16, 2022",
     ("book_restaurant", {"restaurant": "Chez Panisse", "party_size": 4, "date": "2022-08-16"})),
    ("restaurant2", ["restaurant", "taxi"], "Reserve a table for two at The Golden Dragon on 3 March 2027",
     ("book_restaurant", {"restaurant": "The Golden Dragon", "party_size": 2, "date": "2027-03-03"})),
    ("hotel1", ["hotel", "restaurant", "rent"], "Find a hotel in Buenos Aires from December 5, 2026 for three nights",
     ("search_hotels", {"city": "Buenos Aires", "check_in": "2026-12-05", "nights": 3})),
    ("hotel2", ["hotel", "population"], "Hotels in San Francisco, checking in 2027-01-10, 2 nights, 4 guests",
     ("search_hotels", {"city": "San Francisco", "check_in": "2027-01-10", "nights": 2, "guests": 4})),
    ("meeting1", ["meeting", "note", "restaurant"], "Schedule a 'Budget review' meeting with Alice and Bob on 12/01/2026",
     ("schedule_meeting", {"title": "Budget review", "date": "2026-12-01", "attendees": ["Alice", "Bob"]})),
    # names, phrases, quotations
    ("population1", ["population", "holidays"], "How many people live in Rio de Janeiro?",
     ("get_city_population", {"city": "Rio de Janeiro"})),
    ("population2", ["population", "hotel", "rent"], "What is the population of New York City",
     ("get_city_population", {"city": "New York City"})),
    ("taxi1", ["taxi", "restaurant"], "Get me a taxi from Union Station to Logan Airport",
     ("book_taxi", {"pickup": "Union Station", "dropoff": "Logan Airport"})),
    ("taxi2", ["taxi", "flight_status", "hotel"], "I need a cab from the Hilton Hotel to Central Park",
     ("book_taxi", {"pickup": "the Hilton Hotel", "dropoff": "Central Park"})),
    ("package1", ["package", "flight_status"], "Where is my parcel? Tracking number 1Z999AA10123456784",
     ("track_package", {"tracking_number": "1Z999AA10123456784"})),
    ("flight1", ["flight_status", "package", "taxi"], "Is flight BA 287 on time?",
     ("get_flight_status", {"flight_number": "BA 287"})),
    ("note1", ["note", "meeting"], "Save a note titled 'Shopping' that says 'milk, eggs and bread'",
     ("save_note", {"title": "Shopping", "text": "milk, eggs and bread"})),
    ("playlist1", ["playlist", "note"], "Make a playlist called Road Trip with Hotel California and Africa",
     ("create_playlist", {"name": "Road Trip", "songs": ["Hotel California", "Africa"]})),
    ("recipes1", ["recipes", "food"], "Find recipes with chicken, rice and broccoli that take under 30 minutes",
     ("find_recipes", {"ingredients": ["chicken", "rice", "broccoli"], "max_minutes": 30})),
    ("pets1", ["pets", "food"], "Show me cats up to two years old for adoption",
     ("search_pets", {"species": "cat", "max_age_years": 2})),
    ("pets2", ["pets", "playlist", "taxi"], "I want to adopt a rabbit",
     ("search_pets", {"species": "rabbit"})),
    ("workout1", ["workout", "bmi"], "Log a 45 minute run of 8.5km",
     ("log_workout", {"activity": "run", "duration_minutes": 45, "distance_km": 8.5})),
    ("rent1", ["rent", "hotel", "population"], "Estimate rent for a 2 bedroom, 75 m² apartment in Lisbon",
     ("estimate_rent", {"city": "Lisbon", "bedrooms": 2, "square_meters": 75})),
    # negative: no offered tool fits
    ("neg1", ["bmi", "package"], "Write a haiku about the rain.", None),
    ("neg2", ["food", "thermostat"], "What is the capital of Peru?", None),
    ("neg3", ["hotel", "workout", "fx"], "Tell me a joke about cats.", None),
    ("neg4", ["taxi", "pets"], "Summarize the plot of Hamlet in two sentences.", None),
    ("neg5", ["tax", "playlist"], "How are you doing today?", None),
    ("neg6", ["velocity", "note", "crypto"], "Who painted the Mona Lisa?", None),
    ("neg7", ["meeting", "recipes"], "Explain what photosynthesis is.", None),
    ("neg8", ["population", "loan"], "Give me three tips for better sleep.", None),
    ("neg9", ["restaurant", "gas", "visa"], "What does the word 'ephemeral' mean?", None),
    ("neg10", ["holidays", "bill"], "Write a short poem for my mother's birthday.", None),
    ("neg11", ["package", "thermostat", "budget"], "Which is bigger, a whale or an elephant?", None),
    ("neg12", ["flight_status", "rent"], "Recommend a good science fiction book.", None),
    ("neg13", ["bmi", "hotel", "temp"], "Play some jazz music in the living room.", None),
    ("neg14", ["crypto", "food"], "Send an email to my boss saying I'm sick.", None),
    ("neg15", ["interest", "pets", "taxi"], "Turn off the lights in the kitchen.", None),
    # near misses: a tool's words, not its job
    ("neg16", ["restaurant", "hotel"], "Book a flight from Boston to Denver.", None),
    ("neg17", ["temp", "thermostat"], "Will it rain in Oslo tomorrow?", None),
    ("neg18", ["fx", "tax"], "Convert 5 miles to kilometers.", None),
    ("neg19", ["population", "holidays"], "What is the weather like in Madrid?", None),
    ("neg20", ["food", "restaurant"], "Cancel my dinner reservation at Nobu.", None),
]


def rows():
    for task_id, tool_keys, instruction, expected in TASKS:
        yield {"id": task_id, "tools": [T[k] for k in tool_keys], "instruction": instruction,
               "expected": None if expected is None else {"name": expected[0], "arguments": expected[1]}}


if __name__ == "__main__":
    out = Path(__file__).with_name("grammar_probe.jsonl")
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows()), encoding="utf-8")
    print(out, len(TASKS))
