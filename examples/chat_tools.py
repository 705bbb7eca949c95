"""Tools: the model asks for a function call, the script runs it and sends back the result.

The code below is the reference document's, with only its imports changed from
``azure.ai.inference`` to ``inference``, and one fix: the document's ``get_flight_info`` takes
``loc_origin`` and ``loc_destination``, but its tool definition declares ``origin_city`` and
``destination_city``, and a model calls the tool with the declared names. So the function here
takes ``origin_city`` and ``destination_city``. The last lines print the final answer.
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
from inference.models import FunctionDefinition, ChatCompletionsFunctionToolDefinition

flight_info = ChatCompletionsFunctionToolDefinition(
    function=FunctionDefinition(
        name="get_flight_info",
        description="Returns information about the next flight between two cities. This includes the name of the airline, flight number and the date and time of the next flight",
        parameters={
            "type": "object",
            "properties": {
                "origin_city": {
                    "type": "string",
                    "description": "The name of the city where the flight originates",
                },
                "destination_city": {
                    "type": "string",
                    "description": "The flight destination city",
                },
            },
            "required": ["origin_city", "destination_city"],
        },
    )
)

tools = [flight_info]

# The parameter names are the ones the tool definition above declares (the document's function
# takes `loc_origin` and `loc_destination`, which a model following the schema never sends).
def get_flight_info(origin_city: str, destination_city: str):
    return {
        "info": f"There are no flights available from {origin_city} to {destination_city}. You should take a train, specially if it helps to reduce CO2 emissions."
    }

messages = [
    SystemMessage(
        content="You are a helpful assistant that help users to find information about traveling, how to get"
                " to places and the different transportations options. You care about the environment and you"
                " always have that in mind when answering inqueries.",
    ),
    UserMessage(
        content="When is the next flight from Miami to Seattle?",
    ),
]

response = client.complete(
    messages=messages, tools=tools, tool_choice="auto"
)

response_message = response.choices[0].message
tool_calls = response_message.tool_calls

print("Finish reason:", response.choices[0].finish_reason)
print("Tool call:", tool_calls)

messages.append(
    response_message
)

import json
from inference.models import ToolMessage

for tool_call in tool_calls:

    # Get the tool details:

    function_name = tool_call.function.name
    function_args = json.loads(tool_call.function.arguments.replace("\'", "\""))
    tool_call_id = tool_call.id

    print(f"Calling function `{function_name}` with arguments {function_args}")

    # Call the function defined above using `locals()`, which returns the list of all functions
    # available in the scope as a dictionary. Notice that this is just done as a simple way to get
    # the function callable from its string name. Then we can call it with the corresponding
    # arguments.

    callable_func = locals()[function_name]
    function_response = callable_func(**function_args)

    print("->", function_response)

    # Once we have a response from the function and its arguments, we can append a new message to the chat
    # history. Notice how we are telling to the model that this chat message came from a tool:

    messages.append(
        ToolMessage(
            tool_call_id=tool_call_id,
            content=json.dumps(function_response)
        )
    )

response = client.complete(
    messages=messages,
    tools=tools,
)

# fmt: on
print("Final answer:", response.choices[0].message.content)
