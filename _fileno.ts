// Descriptor numbers: the keys of socket maps, at the bottom of the layers.

let lastFileno = 2;

/** A fresh descriptor number; never reused within a process (gh-75114). */
export function nextFileno(): number {
  return ++lastFileno;
}
