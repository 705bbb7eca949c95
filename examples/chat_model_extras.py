"""Extra parameters: send a parameter the API does not define (``logprobs``) to the model.

The code below is the reference document's, with only its imports changed from
``azure.ai.inference`` to ``inference``. ``model_extras`` go at the root of the request body,
and the request carries the header ``extra-parameters: pass-through`` so that the endpoint hands
them to the model instead of refusing them.
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

response = client.complete(
    messages=[
        SystemMessage(content="You are a helpful assistant."),
        UserMessage(content="How many languages are in the world?"),
    ],
    model_extras={
        "logprobs": True
    }
)

# fmt: on
print("Response:", response.choices[0].message.content)
# Fields the model adds to a choice (such as "logprobs") are kept and reachable by name.
print("Logprobs:", response.choices[0].get("logprobs"))
