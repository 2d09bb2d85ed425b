// /sign-in: the form alone; once signed in, on to /my-plugins.
import { startPage } from "../shell.js";

startPage({ path: "/sign-in", title: "Sign in" });
