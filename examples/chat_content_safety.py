"""Content safety: handle the error an endpoint returns when its content filter refuses a prompt.

The reference document's code is in :func:`content_safety_sample`, unchanged except for its
imports (``azure.ai.inference`` becomes ``inference``). The document's code uses
``HttpResponseError`` without importing it; it is imported here from ``azure.core.exceptions``,
as the document's readers do: every HTTP error ``inference`` raises subclasses that class. (The
same class is also reachable as ``inference.exceptions.HttpResponseError``.)

The document's ``except`` block prints the service's error code and message, then re-raises the
error (its last line is a bare ``raise``). The ``__main__`` block below runs the sample and
stops quietly on that re-raised content-filter error (``ContentFilterError``, an
``HttpResponseError`` with status 400 and code ``content_filter``), so that the script exits
with status 0 once the error has been reported; any other error still ends the script with a
traceback.
"""
# ruff: noqa: E501, F401, I001
# The document's code is kept exactly as written, so the formatter leaves it alone:
# fmt: off

import os
from inference import ChatCompletionsClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError
# or, equivalently: from inference.exceptions import HttpResponseError

client = ChatCompletionsClient(
    endpoint=os.environ["AZURE_INFERENCE_ENDPOINT"],
    credential=AzureKeyCredential(os.environ["AZURE_INFERENCE_CREDENTIAL"]),
    model="mistral-large-2407"
)


def content_safety_sample():
    """The reference document's content-safety sample."""
    from inference.models import AssistantMessage, UserMessage, SystemMessage

    try:
        response = client.complete(
            messages=[
                SystemMessage(content="You are an AI assistant that helps people find information."),
                UserMessage(content="Chopping tomatoes and cutting them into cubes or wedges are great ways to practice your knife skills."),
            ]
        )

        print(response.choices[0].message.content)

    except HttpResponseError as ex:
        if ex.status_code == 400:
            response = ex.response.json()
            if isinstance(response, dict) and "error" in response:
                print(f"Your request triggered an {response['error']['code']} error:\n\t {response['error']['message']}")
            else:
                raise
        raise


# fmt: on
if __name__ == "__main__":
    import sys

    from inference.exceptions import ContentFilterError

    try:
        content_safety_sample()
    except ContentFilterError as error:
        # The sample re-raises the error it has just reported: stop here, without a traceback.
        print(f"(re-raised by the sample: {type(error).__name__})", file=sys.stderr)
