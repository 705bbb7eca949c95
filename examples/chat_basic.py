"""A basic chat-completions request with a key, and the model's usage statistics.

The code below is the reference document's ("How to use chat completions with Azure AI model
inference"), with only its imports changed from ``azure.ai.inference`` to ``inference``.

Run it against a real endpoint, or against the local emulator (see README.md)::

    export AZURE_INFERENCE_ENDPOINT=https://<resource>.services.ai.azure.com/models
    export AZURE_INFERENCE_CREDENTIAL=<key>
    python chat_basic.py
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
)

print("Response:", response.choices[0].message.content)
print("Model:", response.model)
print("Usage:")
print("\tPrompt tokens:", response.usage.prompt_tokens)
print("\tTotal tokens:", response.usage.total_tokens)
print("\tCompletion tokens:", response.usage.completion_tokens)
