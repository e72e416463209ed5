// The Hugging Face Hub: model references, the shared cache, downloads. No HTTP-server or engine
// imports: the host and the CLI use it.
export { HubError, type HubErrorCode } from './errors.js';
export { HUB_PREFIX, formatHubReference, isValidRepoId, looksLikeHubReference, namesHubModel, parseHubReference, type HubReference } from './reference.js';
export { DEFAULT_QUANTS, isModelFile, selectModelFiles, splitInfo, type RepoFile } from './select.js';
export { cachedModelReference, hubCacheDir, listCachedModels, removeCached, repoDir, repoFolderName, type CachedModel } from './cache.js';
export { hubOptionsFromEnv, listRepo, type DownloadProgress, type HubOptions } from './client.js';
export { findCached, resolveHubModel, type ResolvedHubModel } from './resolve.js';
export { downloadProgressPrinter, formatBytes } from './progress.js';
export { findCachedFolder, isFolderFile, resolveHubFolder, type ResolvedHubFolder } from './folder.js';
