"""The OpenAI-compatible API under /v1/, in one package.

- `http`: what every endpoint shares: the token, the methods, the body, and
  errors in OpenAI's shape.
- `inference`: models, chat completions and completions.
- `files`: files, which are Tailor datasets.
- `fine_tuning`: fine-tuning jobs, which are Tailor jobs: creating and
  cancelling them, and their endpoints.
- `objects`: OpenAI's objects (files, jobs, events, checkpoints) and lists,
  in Tailor's terms.
- `urls`: the routes, mounted at /v1/.

Importing the package imports none of them.
"""
