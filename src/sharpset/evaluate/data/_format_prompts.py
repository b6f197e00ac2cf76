"""Source lists for ``format.jsonl``: everyday requests with verifiable instructions (issue 12).

Written for this project (Apache-2.0); not copied from IFEval or IFBench. Each entry is
``(task_type, prompt text, [instruction, ...])``; an instruction is ``(instruction_id, kwargs)`` with
the ids and kwargs names of lm-evaluation-harness IFEval (``lm_eval/tasks/ifeval/
instructions_registry.py`` and each class's ``build_description``). ``build.py`` checks that each
prompt states what its checker checks, that no two instructions conflict (IFEval's conflict table),
and that every type occurs at least 5 times.

An entry carrying ``REPEAT`` gives only the request: the builder appends the repeat sentence and sets
``prompt_to_repeat`` to the request, as IFEval's ``combination:repeat_prompt`` expects.
"""

from __future__ import annotations

LT, AL = "less than", "at least"


def NC():
    return ("punctuation:no_comma", {})


def WORDS(rel, n):
    return ("length_constraints:number_words", {"relation": rel, "num_words": n})


def SENTS(rel, n):
    return ("length_constraints:number_sentences", {"relation": rel, "num_sentences": n})


def PARAS(n):
    return ("length_constraints:number_paragraphs", {"num_paragraphs": n})


def NTH(num, nth, word):
    return ("length_constraints:nth_paragraph_first_word",
            {"num_paragraphs": num, "nth_paragraph": nth, "first_word": word})


def BUL(n):
    return ("detectable_format:number_bullet_lists", {"num_bullets": n})


def HL(n):
    return ("detectable_format:number_highlighted_sections", {"num_highlights": n})


def SEC(spliter, n):
    return ("detectable_format:multiple_sections", {"section_spliter": spliter, "num_sections": n})


def TITLE():
    return ("detectable_format:title", {})


def JSON():
    return ("detectable_format:json_format", {})


def CHOICE():
    return ("detectable_format:constrained_response", {})


def PH(n):
    return ("detectable_content:number_placeholders", {"num_placeholders": n})


def PS(marker):
    return ("detectable_content:postscript", {"postscript_marker": marker})


def KW(*words):
    return ("keywords:existence", {"keywords": list(words)})


def FORBID(*words):
    return ("keywords:forbidden_words", {"forbidden_words": list(words)})


def FREQ(word, n, rel):
    return ("keywords:frequency", {"keyword": word, "frequency": n, "relation": rel})


def LETTER(letter, n, rel):
    return ("keywords:letter_frequency", {"letter": letter, "let_frequency": n, "let_relation": rel})


def LANG(code):
    return ("language:response_language", {"language": code})


def REPEAT():
    return ("combination:repeat_prompt", {})  # prompt_to_repeat is filled in by build.py


def TWO():
    return ("combination:two_responses", {})


def END(phrase):
    return ("startend:end_checker", {"end_phrase": phrase})


def UPPER():
    return ("change_case:english_capital", {})


def LOWER():
    return ("change_case:english_lowercase", {})


def CAPW(n, rel):
    return ("change_case:capital_word_frequency", {"capital_frequency": n, "capital_relation": rel})


def QUOTE():
    return ("startend:quotation", {})


_OPTIONS = 'Answer with one of the following options: "My answer is yes.", "My answer is no.", "My answer is maybe."'

# Short paragraphs written for the summary tasks.
P_BEES = ("Honeybees live in colonies of tens of thousands of workers, a few hundred drones and a single queen. "
          "Workers gather nectar and pollen, build wax comb, and cool the hive by fanning their wings. In winter the "
          "colony clusters together and shivers to keep the queen warm, eating the honey stored during summer. "
          "Beekeepers usually take only the surplus so the colony can survive until spring.")
P_LIBRARY = ("The town library will close for renovation from 1 March to 30 April. During this time, books can be "
             "returned at the community centre, and no late fees will be charged. The children's reading club will "
             "meet in the school hall on Saturdays. When the library reopens, it will have a larger study area, new "
             "computers and longer opening hours on weekdays.")
P_SLEEP = ("Researchers followed 2,000 adults for five years and found that people who slept fewer than six hours a "
           "night were more likely to catch colds. The effect held even after accounting for age, smoking and stress. "
           "The authors caution that the study shows a link, not proof of cause, and call for trials that change "
           "people's sleep directly.")
P_LANE = ("The city council voted on Tuesday to build a protected cycling lane along River Road. Supporters say it "
          "will make cycling safer for children riding to school, while some shop owners worry about losing parking "
          "spaces. Construction is planned to start in June and last about four months, and the council promised to "
          "add new parking on two side streets.")
P_COMPOST = ("Composting turns kitchen scraps and garden waste into a dark, crumbly soil improver. A good pile mixes "
             "'green' materials such as vegetable peels and grass clippings with 'brown' ones such as dry leaves and "
             "cardboard. Turning the pile every week or two lets air in and speeds things up. Meat, dairy and oily "
             "food should be left out because they smell and attract pests.")
P_ETNA = ("Mount Etna in Sicily is one of the most active volcanoes in the world. Its eruptions are often gentle lava "
          "flows rather than explosions, which lets scientists study them up close. Farmers have lived on its slopes "
          "for thousands of years because the volcanic soil is very fertile, growing grapes, pistachios and citrus fruit.")
P_NOTES = ("At Monday's meeting the team agreed to launch the new website on 15 May instead of 1 May, to leave time "
           "for testing on phones. Maria will write the help pages, Tom will fix the login bug, and Priya will prepare "
           "the announcement email. The next check-in is on Thursday at 2pm.")
P_OCTOPUS = ("Octopuses have three hearts and blue blood. Two hearts pump blood to the gills, while the third pumps it "
             "to the rest of the body. They can change the colour and texture of their skin in a fraction of a second "
             "to hide from predators, and they are known to solve puzzles and open jars.")

PROMPTS = [
    # --- emails
    ("email", "Write a short email to my landlord asking him to fix the broken heater in the living room. Do not use any commas in the email.", [NC()]),
    ("email", 'Draft an email to my team announcing that Friday\'s meeting moves to Monday at 10am. Keep it under 80 words, and end the email with the exact phrase "Thanks for your flexibility." with nothing after it.', [WORDS(LT, 80), END("Thanks for your flexibility.")]),
    ("email", "Write an email to a neighbour inviting them to a small garden barbecue on Saturday. Include at least 3 placeholders in square brackets, like [time], for the details I still need to fill in.", [PH(3)]),
    ("email", 'Compose a polite email to a customer whose parcel arrived damaged, offering a replacement. Mention the words "apology" and "replacement" somewhere in the text.', [KW("apology", "replacement")]),
    ("email", "Write an email to my manager asking for two days off next month for a family wedding. Your entire reply must be in English and in lowercase letters, with no capital letters at all.", [LOWER()]),
    ("email", "Write a friendly reminder email to club members that the annual fee is due at the end of the month. Add a postscript at the end that starts with P.S.", [PS("P.S.")]),
    ("email", "Write a thank-you email to a colleague who covered my shifts while I was sick. Give the email a title wrapped in double angular brackets, such as <<Thank you>>, and keep it to fewer than 6 sentences.", [TITLE(), SENTS(LT, 6)]),
    ("email", 'Write an email to a plumber asking for a quote to replace a leaking kitchen tap. Do not use the words "urgent" or "emergency".', [FORBID("urgent", "emergency")]),
    ("email", "Draft an email to my child's new teacher asking how she is settling in after moving schools. Write it in French only; no other language is allowed.", [LANG("fr")]),
    ("email", "Write an email to a hotel asking whether they allow small dogs. Write two different versions of the email and separate them with six asterisks: ******", [TWO()]),
    ("email", 'Write an email cancelling my gym membership. Answer with at least 120 words and use the word "contract" at least 2 times.', [WORDS(AL, 120), FREQ("contract", 2, AL)]),
    ("email", 'Write an email to a former teacher asking for a reference letter. The email must have exactly 3 paragraphs separated by the markdown divider ***, and it must finish with the exact phrase "Kind regards, Sam".', [PARAS(3), END("Kind regards, Sam")]),
    ("email", "Write an email telling my book club that we will read a mystery novel next. Write the whole email in English using capital letters only.", [UPPER()]),
    ("email", "Write a short email to a friend recommending a podcast about history. Wrap the whole email in double quotation marks.", [QUOTE()]),
    ("email", "Write a welcome email for new volunteers at an animal shelter. Use exactly 4 markdown bullet points (lines starting with *) to list what they should bring on the first day, and include at least 2 placeholders in square brackets such as [date].", [BUL(4), PH(2)]),
    ("email", 'Write an out-of-office email reply for a week-long holiday. Format the entire output as JSON, with keys such as "subject" and "body"; you may wrap it in ``` markdown ticks.', [JSON()]),
    ("email", "Write an email to my neighbour apologizing for the noise from last night's party.", [REPEAT()]),
    # --- recipes
    ("recipe", "Give me a simple recipe for banana pancakes. List the ingredients as exactly 5 markdown bullet points, and do not use any commas in your answer.", [BUL(5), NC()]),
    ("recipe", "How do I make a quick tomato soup from canned tomatoes? Split the answer into 3 sections, marking each with SECTION X, such as SECTION 1 and SECTION 2.", [SEC("SECTION", 3)]),
    ("recipe", "Share a recipe for overnight oats. Highlight at least 2 parts of the answer with markdown, like *highlighted part*.", [HL(2)]),
    ("recipe", 'Write a recipe for a vegetable stir-fry that uses the word "garlic" at least 3 times.', [FREQ("garlic", 3, AL)]),
    ("recipe", "Give me a recipe for lemon cookies in Spanish only; no other language is allowed. Keep it under 150 words.", [LANG("es"), WORDS(LT, 150)]),
    ("recipe", 'Explain how to cook rice on the stove. Your whole answer should contain fewer than 8 sentences and should not contain the word "microwave".', [SENTS(LT, 8), FORBID("microwave")]),
    ("recipe", "Write a recipe for a fruit salad as JSON, with the ingredients and steps as fields. The entire output must be valid JSON; markdown ticks such as ``` are fine.", [JSON()]),
    ("recipe", 'Describe how to make guacamole. Write the whole answer in lowercase English letters; capital letters are not allowed. Finish with the exact phrase "enjoy your snack".', [LOWER(), END("enjoy your snack")]),
    ("recipe", 'Give me a recipe for homemade pizza dough. Add a title in double angular brackets, such as <<Easy Pizza Dough>>, and include the keywords "yeast" and "knead".', [TITLE(), KW("yeast", "knead")]),
    ("recipe", 'Tell me how to bake a basic sponge cake. Write 4 paragraphs separated from each other by two new lines (a blank line), and start the third paragraph with the word "Meanwhile".', [NTH(4, 3, "meanwhile")]),
    ("recipe", 'Suggest a recipe for a cold cucumber salad. In your response, the letter "c" should appear at least 15 times.', [LETTER("c", 15, AL)]),
    ("recipe", "Give me a recipe for scrambled eggs. Use at least 4 words written in ALL CAPITAL letters to stress the important steps.", [CAPW(4, AL)]),
    ("recipe", "Write a recipe for chocolate chip muffins. At the end of your answer add a postscript beginning with P.P.S", [PS("P.P.S")]),
    ("recipe", "Write a recipe for lentil soup, wrapped entirely in double quotation marks.", [QUOTE()]),
    ("recipe", "Give two different recipes for a quick breakfast smoothie, separated by six asterisks like this: ******", [TWO()]),
    ("recipe", "Write a recipe for roasted potatoes. The whole answer must be in English and in capital letters.", [UPPER()]),
    # --- travel
    ("travel_tips", "Give me tips for a weekend trip to the mountains in autumn. Use exactly 3 bullet points in markdown (start each with *).", [BUL(3)]),
    ("travel_tips", "Plan a 3-day itinerary for a first visit to Rome. Mark each day with Day X, such as Day 1, Day 2 and Day 3, so there are 3 sections.", [SEC("Day", 3)]),
    ("travel_tips", 'What should I pack for a beach holiday with two small kids? Answer with at least 100 words and include the keywords "sunscreen" and "snacks".', [WORDS(AL, 100), KW("sunscreen", "snacks")]),
    ("travel_tips", 'Give me advice for a long train journey across Europe. Do not use any commas, and end your answer with the exact phrase "Have a great trip!"', [NC(), END("Have a great trip!")]),
    ("travel_tips", "Suggest ways to save money while travelling in Japan. Your answer should be in German only; no other language is allowed.", [LANG("de")]),
    ("travel_tips", "How do I deal with jet lag after a long flight? Highlight at least 3 key tips with markdown italics, like *drink water*.", [HL(3)]),
    ("travel_tips", "Give me tips for camping for the first time. Write exactly 2 paragraphs separated by the markdown divider ***.", [PARAS(2)]),
    ("travel_tips", 'List what I should check before renting a car abroad. Format the entire answer as a JSON object; wrapping it in ``` is fine. Do not use the word "cheap".', [JSON(), FORBID("cheap")]),
    ("travel_tips", "Write travel tips for visiting a busy museum. Use fewer than 4 words written in ALL CAPITAL letters.", [CAPW(4, LT)]),
    ("travel_tips", "Give advice for a solo hiking day trip. Your reply should contain at least 10 sentences.", [SENTS(AL, 10)]),
    ("travel_tips", "Suggest a packing list for a rainy city break. Include at least 4 placeholders in square brackets, for example [number of days].", [PH(4)]),
    ("travel_tips", "What are good ways to meet people while travelling alone? Wrap your whole reply in double quotation marks and add a postscript starting with P.S. at the end.", [QUOTE(), PS("P.S.")]),
    ("travel_tips", "Give me tips for visiting Paris in winter in Italian only; no other language is allowed. Use exactly 4 markdown bullet points.", [LANG("it"), BUL(4)]),
    ("travel_tips", 'Write tips for a road trip with a dog. The word "water" should appear at least 3 times, and the letter "z" should appear less than 2 times.', [FREQ("water", 3, AL), LETTER("z", 2, LT)]),
    ("travel_tips", "What are three things to do on a rainy day in a seaside town?", [REPEAT()]),
    # --- explaining a concept
    ("explain_concept", "Explain how a rainbow forms to a ten-year-old. Answer with less than 60 words.", [WORDS(LT, 60)]),
    ("explain_concept", 'Explain what compound interest is. Give your answer a title in double angular brackets, like <<Money that grows>>, and use the word "interest" at least 4 times.', [TITLE(), FREQ("interest", 4, AL)]),
    ("explain_concept", "Explain why we have leap years. Your entire response should be in English, all in capital letters.", [UPPER()]),
    ("explain_concept", 'Explain how vaccines train the immune system. Write 3 paragraphs separated by the markdown divider *** and include the keywords "antibodies" and "memory".', [PARAS(3), KW("antibodies", "memory")]),
    ("explain_concept", "What is inflation? Explain it without using any commas.", [NC()]),
    ("explain_concept", "Explain photosynthesis in simple terms. Your response should contain less than 5 sentences.", [SENTS(LT, 5)]),
    ("explain_concept", "Explain the difference between weather and climate. Use exactly 2 markdown bullet points, one for each.", [BUL(2)]),
    ("explain_concept", "Explain how a refrigerator keeps food cold in Portuguese only; no other language is allowed.", [LANG("pt")]),
    ("explain_concept", 'Explain what a budget is to a teenager. Highlight at least 2 sections with markdown, i.e. *highlighted section*, and end with the exact phrase "Any other questions?"', [HL(2), END("Any other questions?")]),
    ("explain_concept", "Explain how tides work. Your entire answer must be in lowercase English; no capital letters.", [LOWER()]),
    ("explain_concept", 'Explain what an allergy is. Format the whole answer as JSON with the keys "term" and "explanation"; you may use ``` markdown ticks.', [JSON()]),
    ("explain_concept", "Explain why the sky looks orange at sunset. Write two different explanations, one simple and one more detailed, separated by six asterisks: ******", [TWO()]),
    ("explain_concept", "Explain how a credit score works. Split it into 4 sections, each beginning with Part X, such as Part 1 and Part 2.", [SEC("Part", 4)]),
    ("explain_concept", 'Explain what recycling does for the environment. The letter "r" should appear at least 20 times in your answer.', [LETTER("r", 20, AL)]),
    ("explain_concept", 'Explain how the heart pumps blood. Answer with at least 150 words and do not use the word "simple".', [WORDS(AL, 150), FORBID("simple")]),
    ("explain_concept", 'Explain what a time zone is. Write 3 paragraphs separated by a blank line (two new lines); the first paragraph must start with the word "Imagine".', [NTH(3, 1, "imagine")]),
    ("explain_concept", "Explain what an electric circuit is. Use at least 5 words in ALL CAPITAL letters, and add a postscript starting with P.S. at the very end.", [CAPW(5, AL), PS("P.S.")]),
    ("explain_concept", "Explain in plain words why bread goes stale.", [REPEAT()]),
    ("explain_concept", "Explain how a thermometer works. Wrap your entire response in double quotation marks.", [QUOTE()]),
    # --- product descriptions
    ("product_description", "Write a product description for a reusable water bottle. Use exactly 3 markdown bullet points for its features and keep the whole text under 70 words.", [BUL(3), WORDS(LT, 70)]),
    ("product_description", 'Write a description of a handmade wool scarf for an online shop. Do not use the words "cheap" or "best".', [FORBID("cheap", "best")]),
    ("product_description", "Describe a new pair of noise-cancelling headphones for a store page. Include a title in double angular brackets, such as <<Quiet Days>>.", [TITLE()]),
    ("product_description", 'Write a product description for a bamboo cutting board in JSON format, with fields for name, material and features. The entire output should be JSON; ``` ticks are allowed. Include the keyword "bamboo".', [JSON(), KW("bamboo")]),
    ("product_description", "Write an ad for a lightweight hiking backpack in all capital letters, in English.", [UPPER()]),
    ("product_description", 'Describe a scented candle called Forest Morning. Use the word "pine" at least 2 times and end with the exact phrase "Light it tonight."', [FREQ("pine", 2, AL), END("Light it tonight.")]),
    ("product_description", "Write a short product description for a desk lamp. Use no commas at all, and use fewer than 4 sentences.", [NC(), SENTS(LT, 4)]),
    ("product_description", "Write a product description for a children's puzzle. Include at least 2 placeholders in square brackets, like [price] and [age range].", [PH(2)]),
    ("product_description", "Describe a pair of running shoes for a website in French only; no other language is allowed.", [LANG("fr")]),
    ("product_description", "Write two different descriptions of a ceramic coffee mug, separated by six asterisks (******).", [TWO()]),
    ("product_description", "Write a product description for a smart plant sensor. Highlight at least 3 features with markdown, like *waterproof*.", [HL(3)]),
    ("product_description", 'Write a product description for an electric kettle. Wrap the whole thing in double quotation marks, and mention the keywords "boil" and "safety".', [QUOTE(), KW("boil", "safety")]),
    ("product_description", 'Write a description of a yoga mat in lowercase letters only, in English. The word "grip" should appear at least 2 times.', [LOWER(), FREQ("grip", 2, AL)]),
    ("product_description", "Describe a folding bicycle for a catalogue. Use at least 3 words in ALL CAPS.", [CAPW(3, AL)]),
    ("product_description", "Write a product description for a picnic blanket in 2 paragraphs separated by the markdown divider ***, then add a postscript starting with P.P.S", [PARAS(2), PS("P.P.S")]),
    ("product_description", "Write a product page text for a wooden toy train. Mark 3 sections with SECTION 1, SECTION 2 and SECTION 3.", [SEC("SECTION", 3)]),
    ("product_description", 'Describe a stainless steel lunch box in less than 50 words. The letter "l" should appear less than 15 times.', [WORDS(LT, 50), LETTER("l", 15, LT)]),
    # --- study advice
    ("study_advice", "How can I study better for a maths exam in two weeks? Give exactly 5 bullet points in markdown.", [BUL(5)]),
    ("study_advice", 'Give me advice on taking good notes in lectures. Answer in at least 8 sentences and include the keywords "review" and "summary".', [SENTS(AL, 8), KW("review", "summary")]),
    ("study_advice", 'What is a good routine for learning a new language? Write 3 paragraphs separated by two new lines; start the second paragraph with the word "Next".', [NTH(3, 2, "next")]),
    ("study_advice", "How do I stop procrastinating on my essay? Do not use any commas. Keep it under 100 words.", [NC(), WORDS(LT, 100)]),
    ("study_advice", "Give study tips for a student with a part-time job. Write 4 sections, beginning each with Step X, such as Step 1 and Step 2.", [SEC("Step", 4)]),
    ("study_advice", 'How should I revise for a history test? The word "timeline" should appear at least 2 times, and end with the exact phrase "Good luck!"', [FREQ("timeline", 2, AL), END("Good luck!")]),
    ("study_advice", "Give me advice on memorising vocabulary in Spanish only; no other language is allowed.", [LANG("es")]),
    ("study_advice", "How can I keep focus while studying at home? Format your whole answer as JSON with a list of tips; ``` ticks are fine.", [JSON()]),
    ("study_advice", "Give advice to a nervous student before a presentation. Use English and all capital letters for the whole reply.", [UPPER()]),
    ("study_advice", "How do flash cards help with learning? Answer in all lowercase English letters, and highlight at least 2 key ideas with markdown like *spaced repetition*.", [LOWER(), HL(2)]),
    ("study_advice", "What are some ways to make group study sessions work? Include a title wrapped in double angular brackets, like <<Study Together>>, and write fewer than 120 words.", [TITLE(), WORDS(LT, 120)]),
    ("study_advice", 'Give me tips for reading a long textbook chapter. Write two different answers separated by 6 asterisks (******); do not use the word "skim" in either.', [TWO(), FORBID("skim")]),
    ("study_advice", "How can I make a weekly study timetable? Add at least 3 placeholders in square brackets, such as [subject], and finish with a postscript starting with P.S.", [PH(3), PS("P.S.")]),
    ("study_advice", "How should I prepare the night before an exam? Wrap your entire answer in double quotation marks.", [QUOTE()]),
    ("study_advice", "Is studying late at night a good idea before an exam? " + _OPTIONS, [CHOICE()]),
    ("study_advice", "How many hours a day should a high school student study?", [REPEAT()]),
    ("study_advice", 'Give tips for writing a good essay introduction. In your response the letter "w" should appear at least 12 times.', [LETTER("w", 12, AL)]),
    ("study_advice", "Tell me how to use past exam papers to revise. Use fewer than 3 words in ALL CAPITAL letters.", [CAPW(3, LT)]),
    # --- short stories
    ("short_story", "Write a short story about a cat who is afraid of the dark. Use at least 200 words.", [WORDS(AL, 200)]),
    ("short_story", "Write a very short story about a lost umbrella. Give it a title in double angular brackets, like <<The Umbrella>>, and do not use any commas in the story.", [TITLE(), NC()]),
    ("short_story", "Write a bedtime story about a sleepy dragon in 4 paragraphs separated by the markdown divider ***.", [PARAS(4)]),
    ("short_story", 'Write a short story about two friends building a treehouse. The word "hammer" must appear at least 2 times, and end with the exact phrase "The end."', [FREQ("hammer", 2, AL), END("The end.")]),
    ("short_story", "Write a story about a robot learning to bake bread. Write it in all lowercase English letters; no capital letters at all.", [LOWER()]),
    ("short_story", "Write a story about a fisherman and a talking fish in Italian only; no other language is allowed. Use fewer than 12 sentences.", [LANG("it"), SENTS(LT, 12)]),
    ("short_story", 'Write a story for kids about a brave little snail. Write 3 paragraphs separated by two new lines, with the third paragraph starting with the word "Finally".', [NTH(3, 3, "finally")]),
    ("short_story", "Write a short mystery story set on a train. Highlight at least 4 clues with markdown italics, like *a torn ticket*.", [HL(4)]),
    ("short_story", 'Write a short story about a girl who finds an old map. Do not use the words "treasure" or "gold".', [FORBID("treasure", "gold")]),
    ("short_story", "Write a short story about a birthday surprise, told in 3 chapters marked Chapter 1, Chapter 2 and Chapter 3.", [SEC("Chapter", 3)]),
    ("short_story", "Write a story about a storm at a lighthouse in English, using only capital letters.", [UPPER()]),
    ("short_story", "Write two very short stories about a runaway balloon, separated by six asterisks: ******", [TWO()]),
    ("short_story", 'Write a story about a grandmother teaching her grandson to knit. Wrap the entire story in double quotation marks and include the keywords "yarn" and "patience".', [QUOTE(), KW("yarn", "patience")]),
    ("short_story", "Write a short fable about a fox and a crow. Use at least 6 words in ALL CAPITAL letters, and add a postscript at the end starting with P.S. that states the moral.", [CAPW(6, AL), PS("P.S.")]),
    ("short_story", 'Write a story about a dog waiting at a bus stop. The letter "b" should appear at least 10 times, and the story should have at least 120 words.', [LETTER("b", 10, AL), WORDS(AL, 120)]),
    ("short_story", "Write a short story about a kid's first day at a new school with at least 3 placeholders in square brackets, such as [name], so I can personalise it.", [PH(3)]),
    ("short_story", 'Write a short story about a garden gnome that comes alive at night. Give the whole story as JSON with keys "title" and "story"; the entire output must be JSON, ``` ticks allowed.', [JSON()]),
    ("short_story", "Write a four-line story about a snowman on a sunny day.", [REPEAT()]),
    # --- summaries of a given paragraph
    ("summary", "Summarise this paragraph in fewer than 40 words:\n\n" + P_BEES, [WORDS(LT, 40)]),
    ("summary", "Summarise the following notice for a group chat. Use exactly 3 bullet points in markdown and no commas.\n\n" + P_LIBRARY, [BUL(3), NC()]),
    ("summary", "Summarise this text in one or two sentences, so fewer than 3 sentences in total:\n\n" + P_SLEEP, [SENTS(LT, 3)]),
    ("summary", "Summarise this news item in all lowercase English letters, with no capital letters:\n\n" + P_LANE, [LOWER()]),
    ("summary", "Summarise this paragraph in Spanish only; no other language is allowed:\n\n" + P_COMPOST, [LANG("es")]),
    ("summary", 'Give a summary of this text as JSON with the keys "topic" and "summary"; the whole output must be JSON, ``` ticks are allowed:\n\n' + P_ETNA, [JSON()]),
    ("summary", 'Summarise these meeting notes. Include the keywords "deadline" and "testing", and end with the exact phrase "See you Thursday."\n\n' + P_NOTES, [KW("deadline", "testing"), END("See you Thursday.")]),
    ("summary", "Summarise this paragraph for a children's magazine with a title in double angular brackets, like <<Amazing Octopuses>>:\n\n" + P_OCTOPUS, [TITLE()]),
    ("summary", "Write two different summaries of this paragraph, one for adults and one for kids, separated by six asterisks (******):\n\n" + P_BEES, [TWO()]),
    ("summary", "Summarise this notice and wrap your entire summary in double quotation marks:\n\n" + P_LIBRARY, [QUOTE()]),
    ("summary", "Summarise this study in English using only capital letters:\n\n" + P_SLEEP, [UPPER()]),
    ("summary", 'Summarise this text without using the words "council" or "parking":\n\n' + P_LANE, [FORBID("council", "parking")]),
    ("summary", "Summarise this paragraph and highlight at least 2 key points with markdown, like *turn the pile*:\n\n" + P_COMPOST, [HL(2)]),
    ("summary", "Summarise this paragraph in 2 paragraphs separated by the markdown divider ***:\n\n" + P_ETNA, [PARAS(2)]),
    ("summary", "Summarise these notes, then add a postscript starting with P.P.S that lists anything unclear:\n\n" + P_NOTES, [PS("P.P.S")]),
    ("summary", 'Summarise this paragraph with less than 50 words; the word "hearts" should appear less than 2 times:\n\n' + P_OCTOPUS, [WORDS(LT, 50), FREQ("hearts", 2, LT)]),
    ("summary", "Summarise this in French only; no other language is allowed. Use exactly 2 markdown bullet points:\n\n" + P_SLEEP, [LANG("fr"), BUL(2)]),
    # --- home and personal advice
    ("advice", "How can I keep my houseplants alive while I'm on holiday for two weeks? Use exactly 4 markdown bullet points.", [BUL(4)]),
    ("advice", "What's a good way to organise a small kitchen? Answer in fewer than 90 words and don't use any commas.", [WORDS(LT, 90), NC()]),
    ("advice", "How do I get a red wine stain out of a carpet? Write in English, all capital letters.", [UPPER()]),
    ("advice", "Give me advice on talking to a flatmate who never does the dishes. Write 3 paragraphs separated by the markdown divider ***.", [PARAS(3)]),
    ("advice", 'How can I save energy at home in winter? Include the keywords "insulation" and "thermostat" and use at least 100 words.', [KW("insulation", "thermostat"), WORDS(AL, 100)]),
    ("advice", "What should I do to prepare my bike for winter? Mark 3 sections with Section 1, Section 2 and Section 3.", [SEC("Section", 3)]),
    ("advice", "How can I fall asleep faster? Write your answer in German only; no other language is allowed.", [LANG("de")]),
    ("advice", 'How do I make my small balcony feel cosy? Highlight at least 2 ideas with markdown, like *fairy lights*, and end your reply with the exact phrase "Enjoy your balcony!"', [HL(2), END("Enjoy your balcony!")]),
    ("advice", "How do I politely decline a wedding invitation? Give two different replies I could send, separated by six asterisks: ******", [TWO()]),
    ("advice", 'What should I look for when buying a second-hand sofa? Answer as JSON, a list of checks; the entire output must be JSON (``` ticks are fine). Don\'t use the word "bargain".', [JSON(), FORBID("bargain")]),
    ("advice", "Is it okay to water a cactus once a week? " + _OPTIONS, [CHOICE()]),
    ("advice", "Should I replace my toothbrush every three months? " + _OPTIONS, [CHOICE()]),
    ("advice", 'How do I clean a cast iron pan? Your response should contain at least 6 sentences, and the word "oil" should appear at least 2 times.', [SENTS(AL, 6), FREQ("oil", 2, AL)]),
    ("advice", "How can I reduce food waste at home? Write your answer in English, in all lowercase letters; no capital letters. Add a postscript starting with P.S. at the end.", [LOWER(), PS("P.S.")]),
    ("advice", "Give me ideas to make a rainy Sunday fun for two kids. Use at least 3 words written entirely in CAPITAL letters.", [CAPW(3, AL)]),
    ("advice", "How should I store fresh herbs so they last longer? Include at least 2 placeholders in square brackets, like [herb name].", [PH(2)]),
    ("advice", "How do I ask my neighbour to trim a tree that hangs over my garden? Wrap your entire answer in double quotation marks and use fewer than 5 sentences.", [QUOTE(), SENTS(LT, 5)]),
    ("advice", "How do I unclog a bathroom sink without chemicals?", [REPEAT()]),
    ("advice", 'What can I do about a squeaky door? The letter "o" should appear less than 25 times in your answer.', [LETTER("o", 25, LT)]),
    ("advice", 'Write 4 paragraphs of advice on moving to a new city, separated by blank lines (two new lines); the fourth paragraph should start with the word "Remember".', [NTH(4, 4, "remember")]),
    # --- planning
    ("planning", "Plan a simple weekly meal schedule for a family of four. Mark each part with Day X, like Day 1, Day 2 and so on, for 5 days.", [SEC("Day", 5)]),
    ("planning", "Make a checklist for planning a child's birthday party. Use exactly 6 markdown bullet points and do not use any commas.", [BUL(6), NC()]),
    ("planning", 'Help me plan a productive Saturday morning. Keep it under 60 words and include the keyword "coffee".', [WORDS(LT, 60), KW("coffee")]),
    ("planning", "Plan a budget-friendly date night at home. Give it a title in double angular brackets, like <<Night In>>, and highlight at least 2 ideas with markdown, like *board games*.", [TITLE(), HL(2)]),
    ("planning", "Create a one-week plan for starting to run. Format the entire answer as JSON; ``` ticks are allowed.", [JSON()]),
    ("planning", 'Plan a garage sale. Write in English, using capital letters only, and finish with the exact phrase "SEE YOU THERE".', [UPPER(), END("SEE YOU THERE")]),
    ("planning", "Plan a small picnic for six friends in Portuguese only; no other language is allowed.", [LANG("pt")]),
    ("planning", "Help me plan a move to a new flat. Write 3 paragraphs separated by the markdown divider ***, and include a postscript at the end starting with P.S.", [PARAS(3), PS("P.S.")]),
    ("planning", 'Plan a spring cleaning day. The word "window" must appear at least 2 times, and use at least 5 placeholders in square brackets, like [room].', [FREQ("window", 2, AL), PH(5)]),
    ("planning", 'Help me plan a family movie night. Give two different plans, separated by six asterisks (******), and include the keyword "popcorn".', [TWO(), KW("popcorn")]),
    ("planning", 'Plan a day trip to the seaside with grandparents. Use fewer than 10 sentences and do not use the word "beach".', [SENTS(LT, 10), FORBID("beach")]),
    ("planning", "Plan a reading challenge for the summer holidays in all lowercase English; no capital letters. Use exactly 4 markdown bullet points.", [LOWER(), BUL(4)]),
    ("planning", "Plan a surprise anniversary dinner. Use at least 2 words in ALL CAPITALS and wrap your whole answer in double quotation marks.", [CAPW(2, AL), QUOTE()]),
    ("planning", 'Plan a 30-minute workout at home. The letter "s" should appear at least 25 times.', [LETTER("s", 25, AL)]),
    ("planning", 'Plan a neighbourhood litter pick. Write 3 paragraphs separated by two new lines; the first paragraph should start with the word "Gather".', [NTH(3, 1, "gather")]),
    # --- social posts and messages
    ("social_post", "Write a social media post announcing that my bakery now sells gluten-free bread. Keep it under 50 words and do not use any commas.", [WORDS(LT, 50), NC()]),
    ("social_post", "Write a post for a neighbourhood group about a lost grey cat. Include at least 2 placeholders in square brackets, like [phone number].", [PH(2)]),
    ("social_post", "Write a birthday message for my sister in Spanish only; no other language is allowed.", [LANG("es")]),
    ("social_post", "Write a short post celebrating a local football team's win, in all capital letters, in English.", [UPPER()]),
    ("social_post", 'Write a post inviting people to a community garden open day. Include the keywords "seedlings" and "free", and end with the exact phrase "Bring a friend!"', [KW("seedlings", "free"), END("Bring a friend!")]),
    ("social_post", "Write a professional networking post about finishing a first-aid course. Use exactly 3 markdown bullet points and add a postscript starting with P.S.", [BUL(3), PS("P.S.")]),
    ("social_post", "Write a caption for a photo of a sunset at the lake in lowercase letters only, in English; no capitals.", [LOWER()]),
    ("social_post", "Write a post asking friends for book recommendations. Wrap it entirely in double quotation marks.", [QUOTE()]),
    ("social_post", "Write two different captions for a photo of my new puppy, separated by six asterisks: ******", [TWO()]),
    ("social_post", "Write a short thank-you post for everyone who came to our charity run. Use at least 2 words in ALL CAPS for emphasis and fewer than 80 words.", [CAPW(2, AL), WORDS(LT, 80)]),
    ("social_post", 'Write a message to my running group saying tomorrow\'s run is cancelled because of the storm. Don\'t use the words "sorry" or "unfortunately".', [FORBID("sorry", "unfortunately")]),
    ("social_post", "Write a short post inviting neighbours to a street party next Sunday. Do not use any commas.", [REPEAT(), NC()]),
    # --- reviews
    ("review", 'Write a review of a cosy café that serves great hot chocolate. Use at least 80 words, and the word "chocolate" should appear at least 3 times.', [WORDS(AL, 80), FREQ("chocolate", 3, AL)]),
    ("review", "Write a review of a pair of cheap earbuds that broke after a month. Do not use any commas.", [NC()]),
    ("review", "Write a restaurant review in 3 sections, starting each with SECTION X (SECTION 1 for the food, SECTION 2 for the service, SECTION 3 for the price).", [SEC("SECTION", 3)]),
    ("review", 'Write a book review of a novel you imagine about a lighthouse keeper. Give it a title in double angular brackets, like <<Light on the Rocks>>, and end with the exact phrase "Highly recommended."', [TITLE(), END("Highly recommended.")]),
    ("review", "Write a short review of a hotel stay in French only; no other language is allowed. Keep it under 100 words.", [LANG("fr"), WORDS(LT, 100)]),
    ("review", "Write a review of a board game for families. Highlight at least 3 points with markdown, like *easy rules*.", [HL(3)]),
    ("review", "Write a review of a local bus service in all capital letters, in English.", [UPPER()]),
    ("review", 'Write a review of a vacuum cleaner as JSON with the keys "product", "rating" and "review"; the entire output must be JSON, ``` ticks allowed, and include the keyword "suction".', [JSON(), KW("suction")]),
    ("review", "Write a review of a yoga class for beginners. Write exactly 2 paragraphs separated by the markdown divider ***.", [PARAS(2)]),
    ("review", 'Write a review of a museum visit in 4 paragraphs separated by two new lines, where the second paragraph starts with the word "Inside".', [NTH(4, 2, "inside")]),
    ("review", 'Write a review of a new phone case with fewer than 4 sentences; the letter "e" should appear less than 30 times.', [SENTS(LT, 4), LETTER("e", 30, LT)]),
    ("review", 'Write a movie review of an imagined family comedy. Don\'t use the words "boring" or "hilarious", and include at least 2 placeholders in square brackets like [movie title].', [FORBID("boring", "hilarious"), PH(2)]),
    # --- poems
    ("poem", "Write a short poem about autumn leaves in lowercase letters only, in English.", [LOWER()]),
    ("poem", "Write a poem about the sea with a title in double angular brackets, such as <<Salt and Wind>>. Do not use any commas.", [TITLE(), NC()]),
    ("poem", "Write a four-stanza poem about a city at night. Separate the 4 stanzas with the markdown divider *** so there are 4 paragraphs.", [PARAS(4)]),
    ("poem", "Write a short poem about morning coffee in Italian only; no other language is allowed.", [LANG("it")]),
    ("poem", 'Write a poem about a garden in spring. The word "bloom" should appear at least 3 times.', [FREQ("bloom", 3, AL)]),
    ("poem", "Write a limerick about a forgetful cat. Wrap the whole limerick in double quotation marks.", [QUOTE()]),
    ("poem", "Write two different short poems about rain, separated by six asterisks (******).", [TWO()]),
    ("poem", 'Write a poem about friendship with less than 50 words and end it with the exact phrase "side by side".', [WORDS(LT, 50), END("side by side")]),
    ("poem", "Write a poem about winter, all in English capital letters.", [UPPER()]),
    ("poem", "Write a short poem about a paper boat and give it a title in double angular brackets like <<Paper Boat>>.", [REPEAT(), TITLE()]),
    # --- customer service
    ("customer_service", "Write answers to three common questions customers ask a bike repair shop. Use exactly 3 markdown bullet points.", [BUL(3)]),
    ("customer_service", 'Write a reply to a customer who says their online order is late. Include the keywords "tracking" and "refund", and add a postscript starting with P.S.', [KW("tracking", "refund"), PS("P.S.")]),
    ("customer_service", "Write a short FAQ for a swimming pool about opening hours and rules. Mark 4 sections with Section 1, Section 2, Section 3 and Section 4.", [SEC("Section", 4)]),
    ("customer_service", 'Write a reply to a customer asking whether a jacket is waterproof. Use less than 5 sentences, and avoid the words "unfortunately" and "cannot".', [SENTS(LT, 5), FORBID("unfortunately", "cannot")]),
    ("customer_service", "Write a message to customers about a price increase in Portuguese only; no other language is allowed.", [LANG("pt")]),
    ("customer_service", "Write a response to a hotel guest who complained about noise. Highlight at least 2 parts with markdown, like *free breakfast*, and write at least 100 words.", [HL(2), WORDS(AL, 100)]),
    ("customer_service", "Write a support message explaining how to reset a password. Format the whole output as JSON with a list of steps; ``` ticks are allowed.", [JSON()]),
    ("customer_service", "Write a reply to a customer review that praised our bakery. Use at least 3 placeholders in square brackets, like [customer name], and do not use any commas.", [PH(3), NC()]),
    # --- health and fitness
    ("fitness", "Give me a gentle stretching routine for after sitting all day. Use exactly 5 markdown bullet points.", [BUL(5)]),
    ("fitness", "How can I drink more water during the day? Answer in at least 7 sentences.", [SENTS(AL, 7)]),
    ("fitness", "What are easy ways to walk more in daily life? Write in German only; no other language is allowed. Use exactly 3 markdown bullet points.", [LANG("de"), BUL(3)]),
    ("fitness", 'Give me tips for a first 5 km run. Use at least 4 words in ALL CAPITAL letters and end with the exact phrase "You\'ve got this!"', [CAPW(4, AL), END("You've got this!")]),
    ("fitness", 'Suggest a healthy packed lunch for work. The letter "a" should appear at least 20 times, and include the keywords "protein" and "vegetables".', [LETTER("a", 20, AL), KW("protein", "vegetables")]),
    ("fitness", 'Suggest a short morning routine to feel more awake. Wrap your entire response in double quotation marks, and do not use the word "coffee".', [QUOTE(), FORBID("coffee")]),
    ("fitness", "Is it fine to exercise every day? " + _OPTIONS, [CHOICE()]),
    ("fitness", "Does stretching before running prevent all injuries? " + _OPTIONS, [CHOICE()]),
    # --- yes/no everyday questions
    ("everyday_question", "Can I freeze cooked rice and eat it later? " + _OPTIONS, [CHOICE()]),
    ("everyday_question", "Is a tomato technically a fruit? " + _OPTIONS, [CHOICE()]),
    ("everyday_question", "Is it rude to eat lunch at my desk in a shared office? " + _OPTIONS, [CHOICE()]),
    # --- speeches, invitations, letters
    ("speech", 'Write a short toast for my parents\' 30th wedding anniversary. Use fewer than 120 words and include the keywords "thirty" and "laughter".', [WORDS(LT, 120), KW("thirty", "laughter")]),
    ("letter", 'Write the start of a cover letter for a job as a library assistant. Write 3 paragraphs separated by two new lines, with the first paragraph starting with the word "Dear".', [NTH(3, 1, "dear")]),
    ("invitation", "Write an invitation to a children's costume party. Include at least 4 placeholders in square brackets such as [address], and give it a title in double angular brackets like <<Costume Party>>.", [PH(4), TITLE()]),
    ("speech", 'Write a short speech for a school sports day. The word "team" should appear at least 4 times, and end with the exact phrase "Let the games begin!"', [FREQ("team", 4, AL), END("Let the games begin!")]),
    ("letter", "Write a farewell card message for a coworker who is retiring. Do not use any commas, and write fewer than 5 sentences.", [NC(), SENTS(LT, 5)]),
    ("speech", "Write a short speech welcoming new members to a gardening club in all lowercase English letters, with exactly 3 markdown bullet points for the club rules.", [LOWER(), BUL(3)]),
    ("letter", 'Write a cover letter for a summer job at an ice cream shop. Use at least 150 words, and the letter "i" should appear at least 30 times.', [WORDS(AL, 150), LETTER("i", 30, AL)]),
    ("invitation", "Write an invitation for a board game night at my place on Friday.", [REPEAT()]),
    ("letter", "Write a letter to my future self about what I hope to learn this year. Write at least 5 sentences, and use at least 8 words in ALL CAPITAL letters for the things that matter most.", [SENTS(AL, 5), CAPW(8, AL)]),
    ("invitation", "Write an invitation to a baby shower in Italian only; no other language is allowed. Add at least 2 placeholders in square brackets, like [data].", [LANG("it"), PH(2)]),
    ("speech", "Write a short welcome speech for a neighbourhood meeting. Mark 2 sections with PART 1 and PART 2, and use less than 150 words.", [SEC("PART", 2), WORDS(LT, 150)]),
    ("letter", 'Write a letter to a pen pal describing my town. Write 5 paragraphs separated by two new lines; the fifth paragraph must start with the word "Write".', [NTH(5, 5, "write")]),
    # --- three instructions
    ("email", 'Write an email inviting my colleagues to a farewell lunch for Anna. Include the keywords "Friday" and "restaurant", use fewer than 100 words, and add a postscript starting with P.S. at the end.', [KW("Friday", "restaurant"), WORDS(LT, 100), PS("P.S.")]),
    ("recipe", 'Give me a recipe for a simple tomato pasta. Give it a title in double angular brackets, like <<Weeknight Pasta>>, use exactly 4 markdown bullet points for the ingredients, and do not use the word "salt".', [TITLE(), BUL(4), FORBID("salt")]),
    ("travel_tips", "Give me tips for a city break in Vienna in Spanish only; no other language is allowed. Use exactly 3 markdown bullet points and wrap your entire answer in double quotation marks.", [LANG("es"), BUL(3), QUOTE()]),
    ("explain_concept", 'Explain how bicycle gears work. Use at least 5 sentences, highlight at least 2 key ideas with markdown like *gear ratio*, and end with the exact phrase "Happy cycling!"', [SENTS(AL, 5), HL(2), END("Happy cycling!")]),
    ("study_advice", "How can I prepare for a spelling test? Write your whole answer in English and in lowercase letters, use less than 80 words, and do not use any commas.", [LOWER(), WORDS(LT, 80), NC()]),
    ("short_story", 'Write a short story about a night-time power cut in a small village. Use the word "candle" at least 3 times, write at least 150 words, and give it a title in double angular brackets like <<Lights Out>>.', [FREQ("candle", 3, AL), WORDS(AL, 150), TITLE()]),
    ("product_description", 'Write a product description for a wool blanket. Mark 3 sections with SECTION 1, SECTION 2 and SECTION 3, include the keyword "warm", and add a postscript starting with P.P.S at the end.', [SEC("SECTION", 3), KW("warm"), PS("P.P.S")]),
    ("advice", "How do I teach my dog to sit? Write in English using only capital letters, use exactly 4 markdown bullet points, and use less than 70 words.", [UPPER(), BUL(4), WORDS(LT, 70)]),
    ("planning", 'Plan a birthday picnic for my daughter. Use at least 3 placeholders in square brackets like [park name], highlight at least 2 ideas with markdown like *treasure hunt*, and do not use the word "expensive".', [PH(3), HL(2), FORBID("expensive")]),
    ("social_post", 'Write a post announcing a new opening time for our café. Use fewer than 60 words and no commas, and end with the exact phrase "See you soon!"', [WORDS(LT, 60), NC(), END("See you soon!")]),
    ("review", 'Write a review of a new pizza place. Write 3 paragraphs separated by the markdown divider ***, use the word "crust" at least 2 times, and use at least 3 words in ALL CAPITAL letters.', [PARAS(3), FREQ("crust", 2, AL), CAPW(3, AL)]),
    ("summary", 'Summarise this paragraph in less than 40 words, include the keyword "fertile", and wrap your summary in double quotation marks:\n\n' + P_ETNA, [WORDS(LT, 40), KW("fertile"), QUOTE()]),
    ("customer_service", 'Write a reply to a customer who wants to return shoes that are too small. Write 4 paragraphs separated by two new lines, make the second paragraph start with the word "First", include the keyword "receipt", and include at least 1 placeholder in square brackets like [order number].', [NTH(4, 2, "first"), KW("receipt"), PH(1)]),
    ("fitness", 'Suggest a simple routine for a beginner swimmer. The letter "w" should appear at least 8 times, use fewer than 10 sentences, and add a postscript starting with P.S.', [LETTER("w", 8, AL), SENTS(LT, 10), PS("P.S.")]),
    ("poem", "Write a poem about a lighthouse. Give it a title in double angular brackets like <<The Keeper>>, write it in all lowercase English letters, and do not use any commas.", [TITLE(), LOWER(), NC()]),
    ("email", "Write an email to a hotel asking for a late check-out. Write two different versions separated by six asterisks (******), give them a title in double angular brackets like <<Late check-out>>, and do not use any commas.", [TWO(), TITLE(), NC()]),
    ("planning", 'Plan a weekend clean-up of my garden shed. Write the whole answer as JSON (``` ticks allowed), include the keyword "gloves", and do not use the word "rubbish".', [JSON(), KW("gloves"), FORBID("rubbish")]),
]
