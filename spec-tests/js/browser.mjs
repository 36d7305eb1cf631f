// Headless Chromium (Debian's, through playwright-core) for the scenarios that drive the server's web pages.
import { chromium } from "playwright-core";

const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";

/**
 * A fresh browser; hosts in `resolveToLoopback` (e.g. the server's public name) resolve to 127.0.0.1, as they would
 * through DNS in a deployment.
 */
export async function launchBrowser({ resolveToLoopback = [] } = {}) {
    const args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
    if (resolveToLoopback.length > 0)
        args.push(`--host-resolver-rules=${resolveToLoopback.map((h) => `MAP ${h} 127.0.0.1`).join(",")}`);
    return chromium.launch({ executablePath, headless: true, args });
}
