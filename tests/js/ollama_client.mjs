// Ollama's own JavaScript client (npm "ollama") against `onellm serve`: every
// call of the library an app would make, its results printed as one JSON
// object for tests/py/ollama_js_client_test.py to check against the daemon's
// OpenAI API. Usage: node ollama_client.mjs MODULE_DIR PORT
import { createRequire } from 'node:module';

const [moduleDir, port] = process.argv.slice(2);
const require = createRequire(moduleDir + '/');
const { Ollama } = require('ollama');
const ollama = new Ollama({ host: `http://127.0.0.1:${port}` });

const out = {};
out.version = await ollama.version();
out.list = await ollama.list();
const name = out.list.models[0].name;
out.ps = await ollama.ps();
out.show = await ollama.show({ model: name });
const messages = [{ role: 'user', content: 'hello there' }];
const greedy = { temperature: 0, num_predict: 8 };
out.chat = await ollama.chat({ model: name, messages, options: greedy });
out.chat_stream = [];
for await (const part of await ollama.chat({ model: name, messages, options: greedy, stream: true }))
  out.chat_stream.push(part);
out.generate = await ollama.generate({ model: name, prompt: 'hello there', options: greedy });
out.generate_stream = [];
for await (const part of await ollama.generate({ model: name, prompt: 'hello there', options: greedy, stream: true }))
  out.generate_stream.push(part);
out.json = await ollama.generate({ model: name, prompt: 'hello there', format: 'json',
                                   options: { temperature: 0, num_predict: 24 } });
out.embed = await ollama.embed({ model: name, input: ['a cat', 'a dog'] });
try {
  await ollama.chat({ model: name, messages: [{ role: 'wizard', content: 'x' }] });
  out.error = null;
} catch (e) {
  out.error = { name: e.name, status_code: e.status_code, message: e.message };
}
process.stdout.write(JSON.stringify(out));
