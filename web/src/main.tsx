/** The portal's entry: iTwinUI's theme and styles around the app. */
import "@itwin/itwinui-react/styles.css";
import "./portal.css";
import { ThemeProvider } from "@itwin/itwinui-react";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <ThemeProvider theme="light" includeCss={false} className="portal-root">
      <App />
    </ThemeProvider>
  </StrictMode>,
);
