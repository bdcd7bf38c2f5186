// What a client device must not lose when the page goes away mid-take, kept in IndexedDB:
// the microphone frames the node has not acknowledged, and where the device stood (its clock,
// what it played, the next monitor frame to play). A page that comes back within the node's
// grace period resumes the device from here and sends the rest.

const DB = 'audiolab-device';

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** The keep of one device (`key`: its socket URL without the token, and its name). */
export async function openKeep(key) {
  let db;
  try {
    const opening = indexedDB.open(DB, 1);
    opening.onupgradeneeded = () => {
      opening.result.createObjectStore('frames');
      opening.result.createObjectStore('meta');
    };
    db = await request(opening);
  } catch {
    return null; // private windows may refuse storage: the device works, unkept
  }
  const store = (name, mode) => db.transaction(name, mode).objectStore(name);
  const range = (from, to) => IDBKeyRange.bound([key, from], [key, to], false, true);
  return {
    async load() {
      const meta = await request(store('meta', 'readonly').get(key));
      const frames = new Map();
      const cursor = store('frames', 'readonly').openCursor(range(0, Infinity));
      await new Promise((resolve, reject) => {
        cursor.onsuccess = () => {
          const at = cursor.result;
          if (!at) return resolve();
          frames.set(at.key[1], at.value);
          at.continue();
        };
        cursor.onerror = () => reject(cursor.error);
      });
      return { meta, frames };
    },
    putFrame(seq, bytes) {
      store('frames', 'readwrite').put(bytes, [key, seq]);
    },
    dropBelow(seq) {
      store('frames', 'readwrite').delete(range(0, seq));
    },
    putMeta(meta) {
      store('meta', 'readwrite').put(meta, key);
    },
    clear() {
      store('frames', 'readwrite').delete(range(0, Infinity));
      store('meta', 'readwrite').delete(key);
    },
  };
}
