// A tiny observable store: the view's selection, shared with whoever binds it (anywidget model, static page).

export interface Store<T extends object> {
  get(): T;
  /** Merge `patch`; listeners run only if a value changed. */
  set(patch: Partial<T>): void;
  subscribe(listener: (value: T, previous: T) => void): () => void;
}

export function createStore<T extends object>(initial: T): Store<T> {
  let value = { ...initial };
  const listeners = new Set<(value: T, previous: T) => void>();
  return {
    get: () => value,
    set(patch) {
      const next = { ...value, ...patch };
      const changed = (Object.keys(patch) as (keyof T)[]).some((k) => !Object.is(next[k], value[k]));
      if (!changed) return;
      const previous = value;
      value = next;
      for (const listener of [...listeners]) listener(value, previous);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

export interface Selection {
  prompt: number;
  layer: number;
  head: number;
}
