// Errors of the Hugging Face layer. Each carries a code that the host maps to an HTTP answer and
// the CLI prints as is; no HTTP shapes here.
import { CodedError } from '../coded-error.js';

export type HubErrorCode =
  | 'invalid_reference'   // the text is not a valid hf: reference
  | 'repo_not_found'      // no such repository (or private and no token)
  | 'gated'               // gated or private: needs HF_TOKEN with access
  | 'file_not_found'      // no file in the repository matches the reference
  | 'offline_not_cached'  // HF_HUB_OFFLINE=1 (or the hub is unreachable) and the model is not cached
  | 'integrity'           // the downloaded bytes do not match the listed sha256 / size
  | 'disk_full'           // not enough free space for the download
  | 'network'             // the hub could not be reached, or the download failed after retries
  | 'hub_error';          // any other answer from the hub

export class HubError extends CodedError<HubErrorCode> {
  override readonly name = 'HubError';
}
