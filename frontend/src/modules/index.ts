// The modules of the IDE, in sidebar order. A new module adds pages/<module>/, components/<module>/,
// stores/<module>.ts, api/<module>.api.ts and a <module>.module.ts listed here.
import type { AppModule, NavEntry } from "./types";
import { homeModule } from "./home.module";
import { organizationsModule } from "./organizations.module";
import { secretsModule } from "./secrets.module";
import { aiModule } from "./ai.module";

export const modules: AppModule[] = [homeModule, organizationsModule, secretsModule, aiModule];

export const navigation: NavEntry[] = modules.flatMap(m => m.nav);

export type { AppModule, NavEntry };
