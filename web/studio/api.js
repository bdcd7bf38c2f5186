// The REST API from the page: the bearer token kept in localStorage, every failure turned
// into an Error whose message is the server's own (`detail`), uploads with progress.

const TOKEN = 'audiolab.token';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const api = {
  get token() {
    return localStorage.getItem(TOKEN);
  },
  set token(value) {
    if (value) localStorage.setItem(TOKEN, value);
    else localStorage.removeItem(TOKEN);
  },

  headers(extra = {}) {
    return this.token ? { ...extra, authorization: `Bearer ${this.token}` } : extra;
  },

  async request(method, path, body) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, 'The server cannot be reached. Check your connection.');
    }
    const text = await response.text();
    const data = text ? safeJson(text) : null;
    if (!response.ok) throw new ApiError(response.status, data?.detail ?? `${method} ${path}: ${response.status}`);
    return data;
  },

  get(path) {
    return this.request('GET', path);
  },
  post(path, body = undefined) {
    return this.request('POST', path, body);
  },
  patch(path, body) {
    return this.request('PATCH', path, body);
  },
  put(path, body) {
    return this.request('PUT', path, body);
  },
  delete(path) {
    return this.request('DELETE', path);
  },

  /** Binary GET (peaks, audio) as an ArrayBuffer. */
  async bytes(path) {
    const response = await fetch(path, { headers: this.headers() });
    if (!response.ok) throw new ApiError(response.status, `${path}: ${response.status}`);
    return response.arrayBuffer();
  },

  /** Uploads `file` as multipart to `path`, calling `progress(fraction)` as it goes. */
  upload(path, file, progress) {
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open('POST', path);
      if (this.token) request.setRequestHeader('authorization', `Bearer ${this.token}`);
      request.upload.onprogress = (e) => e.lengthComputable && progress(e.loaded / e.total);
      request.onload = () => {
        const data = safeJson(request.responseText);
        if (request.status >= 200 && request.status < 300) resolve(data);
        else reject(new ApiError(request.status, data?.detail ?? `upload failed: ${request.status}`));
      };
      request.onerror = () => reject(new ApiError(0, 'The upload was interrupted. Check your connection.'));
      const form = new FormData();
      form.append('file', file, file.name);
      request.send(form);
    });
  },

  /** The socket URL of a project (with the token, when signed in). */
  socketUrl(projectId) {
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/audio/${projectId}`;
    return this.token ? `${url}?access_token=${encodeURIComponent(this.token)}` : url;
  },
};

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
