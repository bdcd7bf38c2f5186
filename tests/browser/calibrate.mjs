// The calibration's burst finder, in Node (no browser needed): it finds the burst where it was
// delayed, under noise, and refuses a click track however loud (a false echo would misplace
// every take by the difference).
//
//   node tests/browser/calibrate.mjs <web client dir>
import assert from 'node:assert/strict';

const { findBurst } = await import(`${process.argv[2]}/device.js`);
const RATE = 48_000;
let seed = 7;
const random = () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return (seed / 0x7fffffff) * 2 - 1;
};
const burst = Float32Array.from({ length: 240 }, () => random() * 0.5);

// The burst comes back 2,085 frames later, a third as loud, under noise.
const echo = Float32Array.from({ length: RATE / 2 }, () => random() * 0.01);
for (let k = 0; k < burst.length; k++) echo[2_085 + k] += burst[k] / 3;
assert.equal(findBurst(echo, burst, 0, RATE / 4), 2_085);

// A click track (5 ms of 2 kHz every half second) is not the burst.
const clicks = new Float32Array(RATE / 2);
for (let k = 0; k < 240; k++) clicks[6_000 + k] = 0.6 * Math.sin((2 * Math.PI * 2000 * k) / RATE);
assert.equal(findBurst(clicks, burst, 0, RATE / 4), null);
assert.equal(findBurst(new Float32Array(RATE / 2), burst, 0, RATE / 4), null, 'silence');
console.log('calibration: the burst found at 2,085 frames; a click track and silence refused');
