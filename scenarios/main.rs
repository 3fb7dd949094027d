mod support;

mod mesh_ca_api;
mod mesh_istiod_rules;
mod mesh_traffic;
