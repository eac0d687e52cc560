"""Mad Libs: collect words one step at a time (Chip can suggest them), then read the story."""

from fasthtml.common import Blockquote, P

from theseus.workflows.engine import Step, Workflow

STORY = ("Once upon a time, a {step_01} {step_02} decided to go {step_03} in {step_04}. "
         "Everyone there agreed it was the most {step_01} thing they had ever seen, "
         "and the {step_02} was never bored again.")


def one_word(value: str, values: dict) -> str | None:
    """A Mad Lib wants a word or a short phrase, not a paragraph."""
    return "Keep it to a word or a short phrase (up to 40 characters)." if len(value) > 40 else None


def word_step(number: int, label: str, wanted: str, example: str) -> Step:
    return Step(id=f"step_{number:02d}", label=label, placeholder=f"e.g. {example}", check=one_word,
                ask_chip=wanted, notes=f"madlibs.md#{label}",
                say=f"Now {wanted}, please — or press “Ask Chip” and I'll suggest one.")


class MadLibs(Workflow):
    name = "madlibs"
    display_name = "Mad Libs"
    description = "Collect a few words (Chip can suggest them), then read the story they make."
    order = 210

    steps = [
        word_step(1, "Adjective", "an adjective", "sparkly"),
        word_step(2, "Noun", "a noun", "walrus"),
        word_step(3, "Verb ending in -ing", "a verb ending in -ing", "juggling"),
        word_step(4, "Place", "a place", "the library"),
    ]

    def result(self, values):
        return Blockquote(P(STORY.format(**values)), cls="story")
