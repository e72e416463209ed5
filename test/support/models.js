'use strict';
// The shared real models the engine tests use (see ../shared/models/README.md).
const path = require('node:path');
const { sharedModels, vocabDir } = require('./gguf-paths.js');

module.exports = {
  stories: path.join(sharedModels, 'stories260K.gguf'),
  vocabDir,
  // The known greedy continuation of BOS + "Once upon a time".
  storiesGreedyStart: 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park',
};
