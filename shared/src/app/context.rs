//! Who is asking. Every use case receives a context; the HTTP edge fills in the principal from
//! credentials (or leaves it anonymous), and every event records it.

pub use crate::domain::access::Principal;

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub principal: Principal,
    pub request_id: String,
}

impl RequestContext {
    pub fn anonymous() -> RequestContext {
        RequestContext::as_principal(Principal::Anonymous)
    }

    pub fn as_principal(principal: Principal) -> RequestContext {
        RequestContext {
            principal,
            request_id: uuid::Uuid::new_v4().to_string(),
        }
    }
}
