import { register } from "node:module";

register("./wit-stub.mjs", import.meta.url);
