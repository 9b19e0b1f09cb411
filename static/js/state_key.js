// The key history page: times in the reader's format (no inline script, for the Content-Security-Policy).
import { formatTimes } from "./live.js";

formatTimes();
