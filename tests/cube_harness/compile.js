#!/usr/bin/env node
/*
 * Offline driver for Cube's schema compiler (@cubejs-backend/schema-compiler, pinned in
 * package.json).
 *
 * Reads one JSON request on stdin:
 *
 *   {"model_dir": "/path/to/model",
 *    "mode": "sql" | "compile_only",            (optional, default "sql")
 *    "queries": [{"dialect": "duckdb", "query": {measures, dimensions, timeDimensions, ...},
 *                 "pre_aggregations": "skip" | "use"}]}   (optional, default "skip")
 *
 * and writes one JSON answer on stdout:
 *
 *   {"errors": ["<Cube's compile error message>", ...],
 *    "error_details": [{"file": ..., "message": ...}],
 *    "compile_error": "<Cube's full CompileError text>" | null,
 *    "warnings": [...],
 *    "compile_ms": 123,
 *    "results": [{"dialect", "query_class", "sql", "params", "pre_aggregations"}
 *                | {"dialect", "error"}]}
 *
 * "pre_aggregations": "skip" (the default) generates SQL over the source tables: rollups are
 * external (Cube Store) by default in Cube and are left out. "use" lets Cube answer from a
 * matching rollup, read with the query's own dialect from `stb_pre_aggregations.<table>`; the
 * result then lists each rollup used with the SQL that builds it (load_sql, load_params).
 *
 * The model compiles once per process; every query reuses the compiled model. The process exits
 * with 0 whenever it answered (compile errors included), and with 2 only when the harness itself
 * failed (unreadable request, missing packages, ...).
 *
 * How the compiler is driven offline:
 * - CUBEJS_TESSERACT_SQL_PLANNER=false selects the JavaScript SQL planner; the default (Tesseract)
 *   planner lives in the native module, whose binary is not installed (--ignore-scripts).
 * - prepareCompiler() always asks the native module for a Jinja engine. `nativeInstance` below
 *   stands in for it: plain YAML never renders through Jinja, and a model with Jinja templates
 *   is reported as a compile error (the native module is required for those).
 * - stdout carries only the JSON answer: Cube's console output (warnings, deprecation notices,
 *   output of the transpiler worker threads) is sent to stderr.
 */

'use strict';

process.env.CUBEJS_TESSERACT_SQL_PLANNER = 'false';

const fs = require('fs');
const path = require('path');
const util = require('util');

// Keep stdout for the JSON answer only.
const writeStdout = process.stdout.write.bind(process.stdout);
const writeStderr = process.stderr.write.bind(process.stderr);
process.stdout.write = (chunk, encoding, callback) => writeStderr(chunk, encoding, callback);
for (const level of ['log', 'info', 'warn', 'debug', 'trace']) {
  console[level] = (...args) => {
    writeStderr(`${util.format(...args)}\n`);
  };
}

const HARNESS_EXIT_CODE = 2;
const MODEL_EXTENSIONS = ['.yml', '.yaml', '.js', '.jinja', '.py'];
const SKIPPED_DIRS = new Set(['node_modules', '.git', '__pycache__']);
const ANSI_ESCAPES = /\u001b\[[0-9;]*m/g;

/**
 * Query class per dialect name, resolved the way Cube 1.7.43's server does it: the driver's
 * static dialectClass() wins, otherwise the schema compiler's adapter for the dbType.
 * - duckdb: DuckDBDriver.dialectClass() -> DuckDBQuery (in @cubejs-backend/duckdb-driver).
 * - databricks: DatabricksDriver.dialectClass() -> DatabricksQuery (in
 *   @cubejs-backend/databricks-jdbc-driver; loaded from its file so that the JDBC driver and its
 *   Java bridge are not loaded).
 * - trino: TrinoDriver.dialectClass() returns the schema compiler's PrestodbQuery, not its
 *   TrinoQuery; "trino_adapter" gives TrinoQuery for comparison.
 * - postgres, redshift, mysql, mssql, snowflake, bigquery: their drivers define no dialect
 *   class, so Cube uses the schema compiler's adapters (PostgresQuery, RedshiftQuery, ...).
 * Any other dbType the schema compiler knows (clickhouse, sqlite, oracle, ...) also works.
 */
function loadDialects(schemaCompiler) {
  const dialects = {
    duckdb: () => require('@cubejs-backend/duckdb-driver/dist/src/DuckDBQuery.js').DuckDBQuery,
    databricks: () => require(
      '@cubejs-backend/databricks-jdbc-driver/dist/src/DatabricksQuery.js',
    ).DatabricksQuery,
    trino: () => schemaCompiler.PrestodbQuery,
    trino_adapter: () => schemaCompiler.queryClass('trino'),
  };
  return (dialect) => {
    if (Object.prototype.hasOwnProperty.call(dialects, dialect)) {
      return dialects[dialect]();
    }
    return schemaCompiler.queryClass(dialect) || null;
  };
}

/** Stand-in for the native module's NativeInstance; only what plain YAML compilation needs. */
function nativeInstanceStub() {
  const jinjaEngine = {
    loadTemplate() {
      throw new Error('Jinja templates need Cube\'s native module, which this harness does not load');
    },
    renderTemplate() {
      throw new Error('Jinja templates need Cube\'s native module, which this harness does not load');
    },
  };
  return {
    newJinjaEngine: () => jinjaEngine,
    loadPythonContext: async () => ({
      __type: 'PythonCtx', filters: {}, variables: {}, functions: {},
    }),
  };
}

/** Lists the model files below `root` as Cube's file repository does, with relative names. */
function readModelFiles(root) {
  const files = [];
  const walk = (dir) => {
    const entries = fs.readdirSync(dir, { withFileTypes: true })
      .sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRS.has(entry.name) && !entry.name.startsWith('.')) {
          walk(full);
        }
      } else if (MODEL_EXTENSIONS.includes(path.extname(entry.name))) {
        files.push({
          fileName: path.relative(root, full).split(path.sep).join('/'),
          content: fs.readFileSync(full, 'utf8'),
        });
      }
    }
  };
  walk(root);
  return files;
}

function repositoryFor(root) {
  const files = readModelFiles(root);
  return {
    localPath: () => root,
    dataSchemaFiles: async () => files,
  };
}

function cleanMessage(message) {
  return String(message).replace(ANSI_ESCAPES, '');
}

function errorText(error) {
  if (error && typeof error === 'object' && 'message' in error) {
    return cleanMessage(error.message);
  }
  return cleanMessage(error);
}

function jsonValue(value) {
  return JSON.parse(JSON.stringify(value, (_key, item) => {
    if (typeof item === 'bigint') {
      return item.toString();
    }
    return item;
  }));
}

async function compileModel(schemaCompiler, modelDir) {
  const compilers = schemaCompiler.prepareCompiler(repositoryFor(modelDir), {
    nativeInstance: nativeInstanceStub(),
    allowNodeRequire: false,
    errorReport: { logger: (msg) => writeStderr(`${cleanMessage(msg)}\n`) },
  });
  let compileError = null;
  try {
    await compilers.compiler.compile();
  } catch (error) {
    compileError = error;
  }
  const reporter = compilers.compiler.errorsReporter;
  const reported = reporter ? reporter.getErrors() : [];
  const details = reported.map((e) => ({
    file: e.fileName || null,
    message: cleanMessage(e.message || e),
  }));
  if (compileError && details.length === 0) {
    // Thrown outside the error reporter (e.g. Jinja without the native module).
    details.push({ file: null, message: errorText(compileError) });
  }
  const warnings = reporter ? reporter.getWarnings().map((w) => cleanMessage(w.message || w)) : [];
  return {
    compilers,
    details,
    warnings,
    compileError: compileError ? errorText(compileError) : null,
  };
}

function generateSql(schemaCompiler, resolveDialect, compilers, item) {
  const dialect = item && item.dialect;
  if (typeof dialect !== 'string' || !dialect) {
    return { dialect: null, error: 'query item has no "dialect"' };
  }
  let QueryClass;
  try {
    QueryClass = resolveDialect(dialect);
  } catch (error) {
    return { dialect, error: `cannot load the query class for ${dialect}: ${errorText(error)}` };
  }
  if (!QueryClass) {
    return { dialect, error: `unknown dialect: ${dialect}` };
  }
  const preAggregations = item.pre_aggregations || 'skip';
  if (preAggregations !== 'skip' && preAggregations !== 'use') {
    return { dialect, error: `"pre_aggregations" must be "skip" or "use", not ${preAggregations}` };
  }
  try {
    const query = schemaCompiler.createQuery(compilers, dialect, {
      ...(item.query || {}),
      dialectClass: QueryClass,
      // Rollups are external (Cube Store) by default; "skip" leaves them out, as Cube does
      // when external pre-aggregations are disabled, so the SQL reads the source tables.
      disableExternalPreAggregations: preAggregations === 'skip',
    });
    return compilers.compiler.withQuery(query, () => {
      const [sql, params] = query.buildSqlAndParams();
      const used = query.preAggregations.preAggregationsDescription().map((d) => ({
        id: d.preAggregationId,
        table_name: d.tableName,
        external: Boolean(d.external),
        load_sql: d.loadSql ? d.loadSql[0] : null,
        load_params: d.loadSql ? d.loadSql[1] : [],
      }));
      return {
        dialect,
        query_class: QueryClass.name,
        sql,
        params: jsonValue(params || []),
        pre_aggregations: jsonValue(used),
      };
    });
  } catch (error) {
    return { dialect, query_class: QueryClass.name, error: errorText(error) };
  }
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function main() {
  const request = JSON.parse(await readStdin());
  if (!request || typeof request.model_dir !== 'string') {
    throw new Error('request needs "model_dir" (a folder of Cube model files)');
  }
  const modelDir = path.resolve(request.model_dir);
  if (!fs.statSync(modelDir).isDirectory()) {
    throw new Error(`model_dir is not a folder: ${modelDir}`);
  }
  const mode = request.mode || 'sql';
  if (mode !== 'sql' && mode !== 'compile_only') {
    throw new Error(`unknown mode: ${mode}`);
  }
  const queries = mode === 'compile_only' ? [] : (request.queries || []);
  if (!Array.isArray(queries)) {
    throw new Error('"queries" must be a list');
  }

  // eslint-disable-next-line global-require
  const schemaCompiler = require('@cubejs-backend/schema-compiler');
  const resolveDialect = loadDialects(schemaCompiler);

  const started = process.hrtime.bigint();
  const compiled = await compileModel(schemaCompiler, modelDir);
  const compileMs = Number(process.hrtime.bigint() - started) / 1e6;

  const failed = compiled.compileError !== null || compiled.details.length > 0;
  const results = queries.map((item) => {
    if (failed) {
      return { dialect: item && item.dialect, error: 'the model has compile errors' };
    }
    return generateSql(schemaCompiler, resolveDialect, compiled.compilers, item);
  });
  return {
    errors: compiled.details.map((d) => d.message),
    error_details: compiled.details,
    compile_error: compiled.compileError,
    warnings: compiled.warnings,
    compile_ms: Math.round(compileMs),
    results,
  };
}

main().then(
  (answer) => {
    writeStdout(`${JSON.stringify(answer)}\n`, () => process.exit(0));
  },
  (error) => {
    writeStderr(`cube harness failed: ${error && error.stack ? error.stack : error}\n`);
    process.exit(HARNESS_EXIT_CODE);
  },
);
