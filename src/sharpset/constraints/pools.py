"""The word pools and fixed strings constraint samplers draw from (the project's own lists), and the
relations a count can take.

The pool of forbidden words is disjoint from the pool of required ones, so one prompt never asks for
and forbids the same word. Two strings are upstream's, because the checker compares the response with
them: :data:`REPEAT_SIMPLE` and :data:`PERSON_NAMES`.
"""

from __future__ import annotations

REL = {"at least": "at least", "less than": "fewer than"}
RELATIONS = ("less than", "at least")

# required words (keywords:existence/frequency, IFBench keyword types) and first words of a
# paragraph: common, topic-neutral nouns a reply on almost any subject can use
KEYWORDS = ("example", "reason", "detail", "result", "question", "idea", "plan", "world", "people", "value",
            "future", "choice", "balance", "practice", "method", "benefit", "risk", "option", "summary",
            "context", "evidence", "purpose", "habit", "quality", "goal", "problem", "solution", "process",
            "change", "system", "design", "history", "nature", "energy", "health", "water", "light", "story",
            "friend", "journey", "morning", "garden", "river", "mountain", "window", "family", "season",
            "market", "memory", "patience")
# forbidden words: fillers and hedges (disjoint from KEYWORDS)
FORBIDDEN = ("very", "really", "basically", "actually", "simply", "just", "literally", "definitely", "honestly",
             "obviously", "thing", "stuff", "nice", "good", "great", "important", "interesting", "amazing",
             "perhaps", "maybe", "quite", "however", "therefore", "also", "many", "often", "always", "never",
             "can", "will")
FIRST_WORDS = ("first", "next", "finally", "overall", "today", "instead", "meanwhile", "moreover", "then", "because",
               "although", "still", "now", "yes", "imagine", "consider", "remember", "sometimes")
END_PHRASES = ("Any other questions?", "Is there anything else I can help with?", "Let me know if this helps.",
               "That is all for now.", "Thank you for reading.", "Hope this helps!", "Good luck!",
               "I hope that answers your question.", "Have a great day.", "Feel free to ask more.")
SECTION_SPLITTERS = ("Section", "SECTION", "Part", "PART", "Chapter")
POSTSCRIPT_MARKERS = ("P.S.", "P.P.S")
LIST_SEPARATORS = ("...", "SEPARATOR", "!?!?", "-", "~~", ">>", "###")
OPTIONS = ("yes/no/maybe", "I know or I don't know", "a), b), c), d)", "true/false", "agree/disagree/not sure",
           "A), B), C)", "possible or impossible")
PERSON_NAMES = ("Emma, Liam, Sophia, Jackson, Olivia, Noah, Ava, Lucas, Isabella, Mason, Mia, Ethan, Charlotte, "
                "Alexander, Amelia, Benjamin, Harper, Leo, Zoe, Daniel, Chloe, Samuel, Lily, Matthew, Grace, Owen, "
                "Abigail, Gabriel, Ella, Jacob, Scarlett, Nathan, Victoria, Elijah, Layla, Nicholas, Audrey, David, "
                "Hannah, Christopher, Penelope, Thomas, Nora, Andrew, Aria, Joseph, Claire, Ryan, Stella, Jonathan")
REPEAT_SIMPLE = "Only output this sentence here, ignore all other requests."  # the checker's own string


def _language_names() -> dict[str, str]:
    from if_verifiable.ifeval.instructions_util import LANGUAGE_CODES

    return dict(LANGUAGE_CODES)
