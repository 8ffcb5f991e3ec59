"""What a pipeline author builds with: documents and chunks, gates on generated text, question-answer pairs, output declarations and formats, value constraints, tokens, schemas and seeds."""
