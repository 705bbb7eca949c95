"""More request parameters: penalties, ``max_tokens``, ``stop``, ``temperature``, ``top_p`` and
``response_format``.

The code below is the reference document's, with only its imports changed from
``azure.ai.inference`` to ``inference``. The document writes the response format as
``{"type": ChatCompletionsResponseFormatText()}``; ``inference`` accepts that spelling, as well
as ``ChatCompletionsResponseFormatText()`` alone or the string ``"text"``.
"""
# ruff: noqa: E402, I001
# The document's code is kept exactly as written, so the formatter leaves it alone:
# fmt: off

import os
from inference import ChatCompletionsClient
from azure.core.credentials import AzureKeyCredential

client = ChatCompletionsClient(
    endpoint=os.environ["AZURE_INFERENCE_ENDPOINT"],
    credential=AzureKeyCredential(os.environ["AZURE_INFERENCE_CREDENTIAL"]),
    model="mistral-large-2407"
)

from inference.models import SystemMessage, UserMessage
from inference.models import ChatCompletionsResponseFormatText

response = client.complete(
    messages=[
        SystemMessage(content="You are a helpful assistant."),
        UserMessage(content="How many languages are in the world?"),
    ],
    presence_penalty=0.1,
    frequency_penalty=0.8,
    max_tokens=2048,
    stop=["<|endoftext|>"],
    temperature=0,
    top_p=1,
    response_format={ "type": ChatCompletionsResponseFormatText() },
)

print("Response:", response.choices[0].message.content)
print("Finish reason:", response.choices[0].finish_reason)
