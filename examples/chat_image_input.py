"""Images: send a chart with a question about it, and print the answer and usage.

The code below is the reference document's, with its imports changed from
``azure.ai.inference`` to ``inference`` and two documented departures:

* The document downloads a JPEG from a web site; this script reads the small chart shipped
  beside it (``chart.jpg``) instead, and encodes it into the same kind of ``data:`` URL.
* The document then shows the image in a notebook (``IPython.display`` and ``requests``); a
  script has nowhere to show it, so that step is left out.

``inference.models.ImageUrl.load(image_file="chart.jpg")`` builds the same ``data:`` URL in one
call.
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

# The document downloads the image; this reads the local chart.jpg instead.
from pathlib import Path
import base64

image_path = Path(__file__).with_name("chart.jpg")
image_format = "jpeg"

image_data = base64.b64encode(image_path.read_bytes()).decode("utf-8")
data_url = f"data:image/{image_format};base64,{image_data}"

# (The document shows the image here with IPython.display: skipped in a script.)

from inference.models import TextContentItem, ImageContentItem, ImageUrl
response = client.complete(
    messages=[
        SystemMessage("You are a helpful assistant that can generate responses based on images."),
        UserMessage(content=[
            TextContentItem(text="Which conclusion can be extracted from the following chart?"),
            ImageContentItem(image=ImageUrl(url=data_url))
        ]),
    ],
    temperature=0,
    top_p=1,
    max_tokens=2048,
)

print(f"{response.choices[0].message.role}:\n\t{response.choices[0].message.content}\n")
print("Model:", response.model)
print("Usage:")
print("\tPrompt tokens:", response.usage.prompt_tokens)
print("\tCompletion tokens:", response.usage.completion_tokens)
print("\tTotal tokens:", response.usage.total_tokens)
