// A stand-in export thread that fails as it starts (test/span-thread.test.ts).
throw new Error('no exporter here');
