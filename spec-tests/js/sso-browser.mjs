// One single sign-on in headless Chromium, as a person does it: open the server's SSO redirect, sign in on the
// upstream provider's pages (oidc-provider's development login and consent forms), and report the page the server
// shows at the end.
//
//   node sso-browser.mjs '<json>'   json: { start, login, password, serverHost, confirm?, clickLink?, consentFor? }
//
// Prints one line "RESULT <json>" ({ url, status, text, continueHref }) and then OK. With confirm: true, a
// confirmation page of the server (the UIA fallback's) is clicked through first; with clickLink, the server's link
// with that text (e.g. "Continue with ..." on the OAuth sign-in page). With consentFor (an OAuth client's redirect
// URI), the server's consent page is allowed at the end and the result's url is where it sent the browser there.
import { launchBrowser } from "./browser.mjs";

const { start, login, password, serverHost, confirm, clickLink, consentFor } = JSON.parse(process.argv[2]);
const browser = await launchBrowser({ resolveToLoopback: [serverHost] });
try {
    const page = await browser.newPage();
    // The client's redirect URI: the browser stops there, and the URL it was sent to is the result.
    let sentToClient = null;
    if (consentFor)
        await page.route((url) => url.href.startsWith(consentFor), (route) => {
            sentToClient = route.request().url();
            return route.fulfill({ status: 200, contentType: "text/html", body: "<p>back at the client</p>" });
        });
    let response = await page.goto(start);
    const onServer = () => new URL(page.url()).hostname === serverHost;
    if (confirm) {
        const navigation = page.waitForNavigation();
        await page.click("a");
        response = await navigation;
    }
    if (clickLink) {
        const navigation = page.waitForNavigation();
        await page.getByRole("link", { name: clickLink }).click();
        response = await navigation;
    }
    for (let step = 0; step < 10 && !onServer(); step++) {
        const navigation = page.waitForNavigation();
        if (await page.$("input[name=login]")) {
            await page.fill("input[name=login]", login);
            await page.fill("input[name=password]", password);
            await page.click("button[type=submit]");
        } else {
            await page.click("button[type=submit]");
        }
        response = await navigation;
        // The provider redirects through a few of its own URLs: wait for the page the chain ends on.
        await page.waitForLoadState("load");
    }
    if (!onServer()) throw new Error(`never came back to the server: ${page.url()}\n${await page.content()}`);
    if (consentFor) {
        await page.click("button[name=decision][value=allow]");
        // No deadline of its own: the test that runs this script bounds it. The page is still navigating then: only
        // the URL it was sent to is reported.
        while (sentToClient === null) await new Promise((resolve) => setTimeout(resolve, 100));
        console.log(`RESULT ${JSON.stringify({ url: sentToClient, status: 0, text: "", continueHref: null })}`);
    } else {
        const link = await page.$("a");
        const result = {
            url: page.url(),
            status: response?.status() ?? 0,
            text: await page.innerText("body"),
            continueHref: link ? await link.getAttribute("href") : null,
        };
        console.log(`RESULT ${JSON.stringify(result)}`);
    }
} finally {
    await browser.close();
}
console.log("OK");
