"""Hello: the smallest useful workflow, and the template for your own.

Copy this file into `$THESEUS_DATA/workflows/` under a new name, change
`name` and the steps, and it appears in the Apps menu after a restart. The
engine (workflows/engine.py) supplies the landing page, new run / resume,
the step cards, submit, revert, finalize and unlock, and Chip's guidance.
Chip's notes for each step are a markdown file: put yours beside your file.
"""

from fasthtml.common import P, Strong

from theseus.workflows.engine import Step, Workflow


class Hello(Workflow):                        # a workflow is a Workflow subclass in any module
    name = "hello"                            # its id: URLs (/apps/hello), operations (hello.submit), run keys
    display_name = "Hello"                    # what the Apps menu and the page title say
    description = "Say hello: your name, then a greeting. The minimal workflow."
    order = 200                               # position in the Apps menu (lower comes first)

    steps = [                                 # the steps, in order; each one is a card on the page
        Step(
            id="step_01",                     # the key of this step's value in the run's JSON
            label="Your name",                # the card's title and the field's label
            placeholder="e.g. Ada",
            say="Hi! What's your name? Type it in the first card (or just tell me).",  # Chip says this
            notes="hello.md#Your name",       # section "Your name" of hello.md (beside this file, else in
                                              # theseus/docs/workflows/): Chip's notes for the step
            check=lambda value, values: (     # an error message for a bad value, or None
                "A name that long? Please keep it under 100 characters." if len(value) > 100 else None),
        ),
        Step(
            id="step_02",
            label="Greeting",
            say="Nice to meet you, {step_01}! I suggested a greeting; change it if you like.",  # earlier values
            notes="hello.md#Greeting",
            suggest=lambda values: f"Hello, {values['step_01']}!",  # the starting value, from earlier steps
        ),
    ]

    def result(self, values):                 # shown above Finalize once every step is done
        return P(Strong(values["step_02"]))
