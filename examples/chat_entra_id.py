"""A chat-completions request authenticated with Microsoft Entra ID (``DefaultAzureCredential``).

The code below is the reference document's, with only its imports changed from
``azure.ai.inference`` to ``inference``. ``DefaultAzureCredential`` (from the ``azure-identity``
package, a dependency of ``inference``) finds a token source in the environment: a service
principal, a workload or managed identity, or your ``az login`` session. The client asks it
for a token for the endpoint's scope (``https://cognitiveservices.azure.com/.default`` for Azure
AI services) and refreshes it before it expires.

    export AZURE_INFERENCE_ENDPOINT=https://<resource>.services.ai.azure.com/models
    az login
    python chat_entra_id.py
"""
# ruff: noqa: E402, I001
# The document's code is kept exactly as written, so the formatter leaves it alone:
# fmt: off

import os
from inference import ChatCompletionsClient
from azure.identity import DefaultAzureCredential

client = ChatCompletionsClient(
    endpoint=os.environ["AZURE_INFERENCE_ENDPOINT"],
    credential=DefaultAzureCredential(),
    model="mistral-large-2407"
)

from inference.models import SystemMessage, UserMessage

response = client.complete(
    messages=[
        SystemMessage(content="You are a helpful assistant."),
        UserMessage(content="How many languages are in the world?"),
    ],
)

print("Response:", response.choices[0].message.content)
print("Model:", response.model)
print("Usage:")
print("\tPrompt tokens:", response.usage.prompt_tokens)
print("\tTotal tokens:", response.usage.total_tokens)
print("\tCompletion tokens:", response.usage.completion_tokens)
