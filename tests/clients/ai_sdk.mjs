// The AI SDK 5 clients, run by Node against a live endpoint (tests/endpoints/test_real_clients.py runs this).
//
//   node tests/clients/ai_sdk.mjs <scenario> <base-url> <key> [text] [model]
//
// Scenarios, each printing one JSON object on stdout for the test to assert on:
//   chat      the chat engine useChat wraps (AbstractChat, with a plain-object state as React's would hold it)
//             over DefaultChatTransport with no options but the URL and the key: useChat's default body, no
//             mapping. Prints the chat's status, error and messages (parts, metadata) once the turn is over.
//   generate  the OpenAI-compatible provider (@ai-sdk/openai-compatible) on /v1: generateText, then streamText.
//   tools     the provider on a model behind the endpoint, with a client tool (no execute): the tool call.
import { AbstractChat, DefaultChatTransport, generateText, jsonSchema, streamText, tool } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";

const [scenario, baseUrl, key, text = "hello", model = "agent"] = process.argv.slice(2);

class PlainState {
  constructor() {
    this.status = "ready";
    this.error = undefined;
    this.messages = [];
  }
  pushMessage(message) { this.messages = [...this.messages, message]; }
  popMessage() { this.messages = this.messages.slice(0, -1); }
  replaceMessage(index, message) { this.messages = this.messages.map((m, i) => (i === index ? message : m)); }
  snapshot(thing) { return structuredClone(thing); }
}

class Chat extends AbstractChat {
  constructor(options) { super({ ...options, state: new PlainState() }); }
}

async function chat() {
  const errors = [];
  const chat = new Chat({
    transport: new DefaultChatTransport({ api: `${baseUrl}/execute`, headers: { Authorization: `Bearer ${key}` } }),
    onError: (error) => errors.push(String(error && error.message)),
  });
  for (const turn of text.split("\n")) {
    await chat.sendMessage({ text: turn });
  }
  return { status: chat.status, error: chat.error ? chat.error.message : null, errors, messages: chat.messages };
}

function provider() {
  return createOpenAICompatible({ name: "lmstudio-agent", baseURL: `${baseUrl}/v1`, apiKey: key });
}

async function generate() {
  const endpoint = provider();
  const generated = await generateText({ model: endpoint(model), prompt: text, maxRetries: 0 });
  const streamed = streamText({ model: endpoint(model), prompt: text, maxRetries: 0 });
  let streamedText = "";
  for await (const piece of streamed.textStream) streamedText += piece;
  return { text: generated.text, finishReason: generated.finishReason, streamedText };
}

async function tools() {
  const endpoint = provider();
  const getWeather = tool({
    description: "The weather in a city",
    inputSchema: jsonSchema({ type: "object", properties: { city: { type: "string" } }, required: ["city"] }),
  });
  const result = await generateText({ model: endpoint(model), prompt: text, tools: { get_weather: getWeather }, maxRetries: 0 });
  return { finishReason: result.finishReason, toolCalls: result.toolCalls.map((c) => ({ toolName: c.toolName, input: c.input })) };
}

const scenarios = { chat, generate, tools };
try {
  const out = await scenarios[scenario]();
  process.stdout.write(JSON.stringify(out) + "\n");
} catch (error) {
  process.stdout.write(JSON.stringify({ thrown: String(error && error.message), statusCode: error && error.statusCode,
                                        responseBody: error && error.responseBody }) + "\n");
}
