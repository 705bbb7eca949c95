"""Structured output: the answer as an instance of your own class.

``response_format=Scientist`` sends the strict JSON schema of the attrs class (a dataclass,
a TypedDict or a pydantic model works the same way), and ``message.parsed`` holds the
answer as a ``Scientist``. A refusal, an answer cut at the token limit, or JSON that does not
fit the class raises an error that keeps the raw text.
"""

import enum
import os

import attrs
from azure.core.credentials import AzureKeyCredential

from inference import ChatCompletionsClient, StructuredOutputError
from inference.models import SystemMessage, UserMessage


class Discipline(enum.Enum):
    """A field of science."""

    PHYSICS = "physics"
    CHEMISTRY = "chemistry"
    MATHEMATICS = "mathematics"


@attrs.define
class Scientist:
    """A scientist and what they are known for."""

    name: str
    born: int
    discipline: Discipline
    known_for: list[str]
    nickname: str | None


def main() -> None:
    """Ask for the facts of a short biography, as a Scientist."""
    with ChatCompletionsClient(
        endpoint=os.environ["AZURE_INFERENCE_ENDPOINT"],
        credential=AzureKeyCredential(os.environ["AZURE_INFERENCE_CREDENTIAL"]),
        model="mistral-large-2407",
    ) as client:
        try:
            response = client.complete(
                messages=[
                    SystemMessage("Extract the facts about the scientist in the text."),
                    UserMessage(
                        "The physicist Marie Curie was born in 1867 and is known for Radium "
                        "and Polonium."
                    ),
                ],
                response_format=Scientist,
            )
        except StructuredOutputError as exc:
            print("No usable answer:", exc)
            print("The model wrote:", exc.text)
            raise SystemExit(1) from exc

    message = response.choices[0].message
    scientist: Scientist = message.parsed
    print("JSON:", message.content)
    print("Parsed:", scientist)
    print(f"{scientist.name}, born {scientist.born}, {scientist.discipline.value}")


if __name__ == "__main__":
    main()
