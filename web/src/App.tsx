/**
 * The portal: sign-in, then the pages of a session (iModels, an iModel's connections and its team, a new connection,
 * a connection, the user's account, users for administrators) under a header with the service's health, the
 * signed-in user and the token banner.
 */
import { Anchor, Button, Header, HeaderLogo, SkipToContentLink } from "@itwin/itwinui-react";
import { useCallback, useEffect, useMemo, useState } from "react";
import { signIn, type Api } from "./api";
import { SessionContext, type Session } from "./context";
import { HealthIndicator } from "./HealthIndicator";
import { href, useHashRoute } from "./hooks";
import { AccountPage } from "./pages/AccountPage";
import { ConnectionPage } from "./pages/ConnectionPage";
import { IModelPage } from "./pages/IModelPage";
import { IModelsPage } from "./pages/IModelsPage";
import { NewConnectionPage } from "./pages/NewConnectionPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { SignInPage } from "./pages/SignInPage";
import { TeamPage } from "./pages/TeamPage";
import { UsersPage } from "./pages/UsersPage";
import { TokenBanner, tokenNeedsAttention } from "./TokenBanner";
import type { PortalConfig, User } from "./types";

export function App() {
  const [auth, setAuth] = useState<{ api: Api; user: User }>();
  const [config, setConfig] = useState<PortalConfig>();
  const [signedOutBecause, setSignedOutBecause] = useState<string>();
  const route = useHashRoute();

  const signOut = useCallback((because?: string) => {
    // Dropping the client drops the key: nothing else holds it.
    setAuth(undefined);
    setConfig(undefined);
    setSignedOutBecause(because);
  }, []);

  const onSignIn = useCallback(
    async (key: string) => {
      const session = await signIn(key, () => signOut("The API no longer accepts your key: sign in again."));
      setSignedOutBecause(undefined);
      setAuth(session);
      session.api.get<PortalConfig>("/config").then(setConfig, () => setConfig(undefined));
    },
    [signOut],
  );

  const refreshUser = useCallback(async () => {
    if (!auth) return;
    const { user } = await auth.api.get<{ user: User }>("/users/me");
    setAuth((a) => (a && a.api === auth.api ? { ...a, user } : a));
  }, [auth]);

  // The user's token changes with visits and time: read it again now and then (often while the banner shows).
  const attention = auth ? tokenNeedsAttention(auth.user.token, Date.now()) : false;
  useEffect(() => {
    if (!auth) return;
    const timer = window.setInterval(() => void refreshUser().catch(() => undefined), attention ? 3_000 : 60_000);
    return () => window.clearInterval(timer);
  }, [auth, attention, refreshUser]);

  const session: Session | undefined = useMemo(
    () => (auth ? { api: auth.api, user: auth.user, config, refreshUser } : undefined),
    [auth, config, refreshUser],
  );

  if (!session) return <SignInPage onSignIn={onSignIn} notice={signedOutBecause} />;

  let page;
  if (route.length === 0 || (route.length === 1 && route[0] === "imodels")) page = <IModelsPage />;
  else if (route[0] === "imodels" && route.length === 2) page = <IModelPage key={route[1]} iModelId={route[1]} />;
  else if (route[0] === "imodels" && route.length === 3 && route[2] === "new-connection")
    page = <NewConnectionPage key={route[1]} iModelId={route[1]} />;
  else if (route[0] === "imodels" && route.length === 3 && route[2] === "team")
    page = <TeamPage key={route[1]} iModelId={route[1]} />;
  else if (route.length === 1 && route[0] === "account") page = <AccountPage />;
  else if (route.length === 1 && route[0] === "users") page = <UsersPage />;
  else if (route[0] === "connections" && route.length === 2)
    page = <ConnectionPage key={route[1]} connectionId={route[1]} />;
  else page = <NotFoundPage />;

  return (
    <SessionContext.Provider value={session}>
      <SkipToContentLink href="#main-content" onClick={skipToMain} />
      <Header
        appLogo={
          <HeaderLogo
            logo={<span aria-hidden="true" className="portal-logo" />}
            as="a"
            href={href("imodels")}
            aria-label="imodel-sync: iModels"
          >
            imodel-sync
          </HeaderLogo>
        }
        actions={[
          <HealthIndicator key="health" />,
          session.user.role === "admin" ? (
            <Anchor key="users" href={href("users")} className="portal-header-link">
              Users
            </Anchor>
          ) : null,
          <Anchor
            key="user"
            href={href("account")}
            className="portal-user portal-header-link"
            title={`${session.user.email}: your account`}
          >
            Signed in as {session.user.name}
            {session.user.role === "admin" && !/admin/i.test(session.user.name) ? " (administrator)" : ""}
          </Anchor>,
          <Button
            key="signout"
            styleType="borderless"
            onClick={() => signOut("You signed out. The key was forgotten.")}
          >
            Sign out
          </Button>,
        ]}
      />
      <TokenBanner />
      <main id="main-content" className="portal-main" tabIndex={-1}>
        {page}
      </main>
    </SessionContext.Provider>
  );
}

/** The skip link moves focus into the page without changing the hash (which holds the route). */
function skipToMain(e: React.MouseEvent) {
  e.preventDefault();
  document.getElementById("main-content")?.focus();
}
