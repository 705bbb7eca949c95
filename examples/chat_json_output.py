"""JSON mode: ask for a JSON object, then parse the answer.

The request is the reference document's, with only its imports changed from
``azure.ai.inference`` to ``inference``; the last lines print the answer and parse it with
``json.loads`` (JSON mode guarantees valid JSON unless ``finish_reason`` is ``"length"``).
"""
# ruff: noqa: E402, E501, I001
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
from inference.models import ChatCompletionsResponseFormatJSON

response = client.complete(
    messages=[
        SystemMessage(content="You are a helpful assistant that always generate responses in JSON format, using."
                      " the following format: { ""answer"": ""response"" }."),
        UserMessage(content="How many languages are in the world?"),
    ],
    response_format={ "type": ChatCompletionsResponseFormatJSON() }
)

# fmt: on
import json

print("Response:", response.choices[0].message.content)
answer = json.loads(response.choices[0].message.content)
print("Parsed:", answer)
